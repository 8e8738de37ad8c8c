package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// tfConfig is the Terraform in this folder, parsed but not evaluated: the checks read
// literal names and follow references between resources, which is all they need.
type tfConfig struct {
	files     map[string][]byte
	blocks    []*tfBlock                     // every top-level block, in file order
	resources map[string]map[string]*tfBlock // type → name → block
	locals    map[string]hclsyntax.Expression
}

// tfBlock is one top-level block with the file it came from.
type tfBlock struct {
	*hclsyntax.Block
	file string
	src  []byte // the block's source text
}

func (b *tfBlock) addr() string {
	if len(b.Labels) == 0 {
		return b.Type
	}
	return strings.Join(b.Labels, ".")
}

// parseTF parses Terraform sources (file name → text).
func parseTF(files map[string][]byte) (*tfConfig, error) {
	cfg := &tfConfig{files: files, resources: map[string]map[string]*tfBlock{}, locals: map[string]hclsyntax.Expression{}}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f, diags := hclsyntax.ParseConfig(files[n], n, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", n, diags.Error())
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			tb := &tfBlock{Block: b, file: n, src: b.Range().SliceBytes(files[n])}
			cfg.blocks = append(cfg.blocks, tb)
			switch b.Type {
			case "resource":
				if len(b.Labels) != 2 {
					return nil, fmt.Errorf("%s: resource with %d labels", b.DefRange(), len(b.Labels))
				}
				m := cfg.resources[b.Labels[0]]
				if m == nil {
					m = map[string]*tfBlock{}
					cfg.resources[b.Labels[0]] = m
				}
				m[b.Labels[1]] = tb
			case "locals":
				for name, a := range b.Body.Attributes {
					cfg.locals[name] = a.Expr
				}
			}
		}
	}
	return cfg, nil
}

// loadTF parses the *.tf files in dir.
func loadTF(t *testing.T, dir string) *tfConfig {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no *.tf in %s (%v)", dir, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	cfg, err := parseTF(files)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mustParseTF parses one snippet for the checkers' own tests.
func mustParseTF(t *testing.T, src string) *tfConfig {
	t.Helper()
	cfg, err := parseTF(map[string][]byte{"snippet.tf": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (c *tfConfig) ofType(typ string) []*tfBlock {
	var out []*tfBlock
	for _, b := range c.blocks {
		if b.Type == "resource" && b.Labels[0] == typ {
			out = append(out, b)
		}
	}
	return out
}

func attr(body *hclsyntax.Body, name string) hclsyntax.Expression {
	if a, ok := body.Attributes[name]; ok {
		return a.Expr
	}
	return nil
}

func subBlocks(body *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// subBlock returns the first nested block along a path of block types, or nil.
func subBlock(body *hclsyntax.Body, path ...string) *hclsyntax.Block {
	var b *hclsyntax.Block
	for _, typ := range path {
		bs := subBlocks(body, typ)
		if len(bs) == 0 {
			return nil
		}
		b = bs[0]
		body = b.Body
	}
	return b
}

// value evaluates an expression that uses only literals and locals made of literals.
func (c *tfConfig) value(e hclsyntax.Expression) (cty.Value, bool) {
	if e == nil {
		return cty.NilVal, false
	}
	locals := map[string]cty.Value{}
	for _, tr := range e.Variables() {
		if tr.RootName() != "local" || len(tr) < 2 {
			return cty.NilVal, false
		}
		name := tr[1].(hcl.TraverseAttr).Name
		le, ok := c.locals[name]
		if !ok {
			return cty.NilVal, false
		}
		v, ok := c.value(le)
		if !ok {
			return cty.NilVal, false
		}
		locals[name] = v
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"local": cty.ObjectVal(locals)}}
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// str evaluates a literal string (or a local made of one).
func (c *tfConfig) str(e hclsyntax.Expression) (string, bool) {
	v, ok := c.value(e)
	if !ok || v.Type() != cty.String || v.IsNull() {
		return "", false
	}
	return v.AsString(), true
}

// num evaluates a literal number (or a local made of one).
func (c *tfConfig) num(e hclsyntax.Expression) (int64, bool) {
	v, ok := c.value(e)
	if !ok || v.Type() != cty.Number || v.IsNull() {
		return 0, false
	}
	n, acc := v.AsBigFloat().Int64()
	return n, acc == 0
}

// strings evaluates a list of literal strings, also wrapped in toset(…) or tolist(…).
func (c *tfConfig) strings(e hclsyntax.Expression) ([]string, bool) {
	if call, ok := e.(*hclsyntax.FunctionCallExpr); ok && (call.Name == "toset" || call.Name == "tolist") && len(call.Args) == 1 {
		e = call.Args[0]
	}
	tup, ok := e.(*hclsyntax.TupleConsExpr)
	if !ok {
		return nil, false
	}
	var out []string
	for _, el := range tup.Exprs {
		s, ok := c.str(el)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// refName returns NAME when e refers to resource TYP.NAME (in any attribute of it).
func refName(e hclsyntax.Expression, typ string) (string, bool) {
	if e == nil {
		return "", false
	}
	for _, tr := range e.Variables() {
		if tr.RootName() == typ && len(tr) >= 2 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				return a.Name, true
			}
		}
	}
	return "", false
}

// refsEach reports whether e refers to each.key or each.value.
func refsEach(e hclsyntax.Expression) bool {
	if e == nil {
		return false
	}
	for _, tr := range e.Variables() {
		if tr.RootName() == "each" {
			return true
		}
	}
	return false
}

// rootRef returns the first reference of e as "root.attr" (e.g. "local.pubsub_agent",
// "var.iap_members", "google_service_account.ui").
func rootRef(e hclsyntax.Expression) string {
	if e == nil {
		return ""
	}
	for _, tr := range e.Variables() {
		if len(tr) >= 2 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				return tr.RootName() + "." + a.Name
			}
		}
	}
	return ""
}

func TestTerraformParses(t *testing.T) {
	cfg := loadTF(t, ".")
	for _, typ := range []string{"google_cloud_run_v2_service", "google_cloud_run_v2_job", "google_pubsub_subscription",
		"google_firestore_index", "google_service_account", "google_cloud_scheduler_job"} {
		if len(cfg.ofType(typ)) == 0 {
			t.Errorf("no %s in infra/", typ)
		}
	}
}
