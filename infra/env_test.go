package infra

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"golang.org/x/tools/go/packages"
)

const module = "github.com/updraft-dev/updraft"

// component is one deployed binary (or one target of it) and its Cloud Run resource.
type component struct {
	name string // as in docs
	main string // the main package, relative to the module
	// target is FUNCTION_TARGET for the functions binary, and the worker binary's mode for
	// it ("job", or "runner": its first argument, worker.RunnerArg): a branch on another
	// target's value is not followed.
	target string
	tf     string // TYPE.NAME of its Cloud Run service or job
	// command is the CLI command the binary runs (the worker runs `updraft worker`): the
	// walk follows only that entry of the CLI's command table.
	command string
}

var components = []component{
	{name: "scheduler", main: "cmd/updraft-scheduler", tf: "google_cloud_run_v2_service.scheduler"},
	{name: "ui", main: "cmd/updraft-ui", tf: "google_cloud_run_v2_service.ui"},
	{name: "dispatch", main: "cmd/updraft-functions", target: "Dispatch", tf: "google_cloud_run_v2_service.dispatch"},
	{name: "advance", main: "cmd/updraft-functions", target: "Advance", tf: "google_cloud_run_v2_service.advance"},
	{name: "alerts", main: "cmd/updraft-functions", target: "Alerts", tf: "google_cloud_run_v2_service.alerts"},
	{name: "slack actions", main: "cmd/updraft-functions", target: "SlackActions", tf: "google_cloud_run_v2_service.slack_actions"},
	{name: "worker", main: "cmd/updraft-worker", command: "worker", target: "job", tf: "google_cloud_run_v2_job.worker"},
	{name: "runner", main: "cmd/updraft-worker", command: "worker", target: "runner", tf: "google_cloud_run_v2_service.runner"},
}

// functionTargets are the values of FUNCTION_TARGET: a switch or if on one of them is
// followed only into the branch of the component's own target.
var functionTargets = map[string]bool{"Dispatch": true, "Advance": true, "Alerts": true, "SlackActions": true, "runner": true}

// envExemptIn are variables one component's code reads that Terraform does not set on it,
// and why ("COMPONENT VARIABLE").
var envExemptIn = map[string]string{
	"ui UPDRAFT_UI_URL": "the UI links the task types (its pages describe them) but runs no task, where .ti.log_url is read; a service cannot name its own URL in Terraform",
}

// envExempt are variables the code reads that Terraform does not set, and why.
var envExempt = map[string]string{
	// Set by Cloud Run itself.
	"PORT":                   "set by Cloud Run",
	"K_SERVICE":              "set by Cloud Run in services",
	"K_REVISION":             "set by Cloud Run in services",
	"K_CONFIGURATION":        "set by Cloud Run in services",
	"CLOUD_RUN_JOB":          "set by Cloud Run in jobs",
	"CLOUD_RUN_EXECUTION":    "set by Cloud Run in jobs",
	"CLOUD_RUN_TASK_INDEX":   "set by Cloud Run in jobs",
	"CLOUD_RUN_TASK_ATTEMPT": "set by Cloud Run in jobs",
	"CLOUD_RUN_TASK_COUNT":   "set by Cloud Run in jobs",
	// Set per execution.
	"UPDRAFT_ATTEMPT":            "set per execution by Dispatch's RunJob overrides",
	"UPDRAFT_PROCTREE_SUPERVISE": "set by the worker on the supervisor it re-executes itself as (internal/proctree)",
	// Local only: emulators and stand-ins.
	"FIRESTORE_EMULATOR_HOST":             "local emulator only",
	"PUBSUB_EMULATOR_HOST":                "local emulator only",
	"BIGQUERY_EMULATOR_HOST":              "local emulator only",
	"UPDRAFT_SECRETMANAGER_EMULATOR_HOST": "local stand-in only",
	"UPDRAFT_CLOUDRUN_EMULATOR_HOST":      "local stand-in only",
	"UPDRAFT_LOGGING_EMULATOR_HOST":       "local stand-in only",
	"STORAGE_EMULATOR_HOST":               "local stand-in only (the storage client reads it itself)",
	"UPDRAFT_SLACK_API_URL":               "local fake Slack only (unset: slack.com)",
	"HOST":                                "local only (unset: all interfaces, as Cloud Run needs)",
	"UPDRAFT_LOG_DIR":                     "local only: attempt logs on disk; on Cloud Run they go to stdout",
	"UPDRAFT_DEV_USER":                    "local only: the dev identity when auth is off",
	"UPDRAFT_INLINE_DEADLINE":             "tests only: shrinks inline attempts' limit (unset: each type's own, below the push deadline)",
	// Local only: the CLI's dev commands, in the package whose `worker` command the worker
	// binary runs.
	"HOME":                       "local CLI only",
	"USER":                       "local CLI only",
	"JAVA_HOME":                  "local emulators only",
	"UPDRAFT_HOME":               "local CLI only",
	"UPDRAFT_USER":               "local CLI only",
	"UPDRAFT_WORKER_CMD":         "local dispatcher only",
	"UPDRAFT_BUNDLE_CACHE":       "where bundles unpack: the user cache dir suits Cloud Run's in-memory disk",
	"UPDRAFT_PYTHON":             "set by the worker image (ENV in deploy/Dockerfile.worker), not Terraform",
	"UPDRAFT_WORKER_STATS":       "local benchmarks only",
	"UPDRAFT_WORKER_SERVE":       "local dispatcher only: set on its warm workers (local.Pool)",
	"LISTEN_FDS":                 "local Cloud Run stand-in only: it hands the runner its listening socket",
	"UPDRAFT_CACHE":              "local emulators only",
	"UPDRAFT_GCLOUD_SDK_ROOT":    "local emulators only",
	"UPDRAFT_EMULATOR_JAVA_OPTS": "local emulators only",
	"UPDRAFT_EMULATOR_CDS":       "local emulators only",
	"UPDRAFT_BIGQUERY_EMULATOR":  "local emulators only",
	"UPDRAFT_API":                "CLI only: unset, the worker talks to Firestore directly, as it must",
	"UPDRAFT_ID_TOKEN":           "CLI only, with UPDRAFT_API",
	// Optional, with a safe default.
	"UPDRAFT_AUTH":                    "optional: unset means on, the safe default (off is refused on Cloud Run)",
	"UPDRAFT_LEASE":                   "optional: the engine's default",
	"UPDRAFT_REPUBLISH_AFTER":         "optional: the engine's default",
	"UPDRAFT_START_GRACE":             "optional: the engine's default",
	"UPDRAFT_LOG_MAX_BYTES":           "optional: default 16 MiB per attempt's log",
	"UPDRAFT_RETENTION":               "optional: the engine's default, 90d (how long finished runs are kept; the TTL policies act on expire_at)",
	"UPDRAFT_ALERT_DIGEST_EVERY":      "optional: default 10m",
	"UPDRAFT_ALERT_DIGEST_CONNECTION": "optional: default connection slack",
	"UPDRAFT_CSRF_SECRET":             "optional: unset, the UI reads the secret updraftsys-csrf-secret (secrets.tf)",
	"UPDRAFT_HTTP_ALLOW":              "optional: unset, http tasks reach public addresses only (the egress policy, docs/security.md)",
	"UPDRAFT_RUNNER_CLASSES":          "optional: default small, the class the runner's per-attempt share stands in for",
	"UPDRAFT_RUNNER_MAX_TIMEOUT":      "optional: default and at most 9m, what a push request allows",
}

// envReader finds the environment variables a component's code can read: it follows the
// functions reachable from main (calls, function values, methods of the types it names, and
// interface methods to the module's implementations), and collects the constant names passed
// to os.Getenv, os.LookupEnv, and to any func(string) string value whose name says env
// (getenv parameters, Getenv fields). A name passed through a parameter is followed to the
// callers' constants; a name ranging over a literal list is each of its elements.
type envReader struct {
	decls   map[*types.Func]*funcDecl
	methods map[string][]*types.Func // module methods by name
	pkgs    map[string]*packages.Package
}

type funcDecl struct {
	decl *ast.FuncDecl
	pkg  *packages.Package
}

func loadModule(t *testing.T) *envReader { return loadModuleAt(t, "..") }

// loadModuleAt loads the module rooted at dir.
func loadModuleAt(t *testing.T, dir string) *envReader {
	t.Helper()
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes |
			packages.NeedTypesInfo | packages.NeedImports,
		Dir: dir,
	}
	pkgs, err := packages.Load(cfg, module+"/...")
	if err != nil {
		t.Fatal(err)
	}
	r := &envReader{decls: map[*types.Func]*funcDecl{}, methods: map[string][]*types.Func{}, pkgs: map[string]*packages.Package{}}
	for _, p := range pkgs {
		if strings.HasSuffix(p.PkgPath, ".test") || strings.HasSuffix(p.PkgPath, "_test") || p.TypesInfo == nil {
			continue
		}
		r.pkgs[p.PkgPath] = p
		for _, f := range p.Syntax {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				fn, ok := p.TypesInfo.Defs[fd.Name].(*types.Func)
				if !ok {
					continue
				}
				r.decls[fn] = &funcDecl{decl: fd, pkg: p}
				if fd.Recv != nil {
					r.methods[fn.Name()] = append(r.methods[fn.Name()], fn)
				}
			}
		}
	}
	return r
}

// envRead is what envVars found: the names, and reads it could not resolve.
type envRead struct {
	names      map[string][]string // name → where it is read
	unresolved []string
	errors     []string // packages in the closure that failed to load
	via        map[*types.Func]*types.Func
}

// path explains how a function was reached from main.
func (e envRead) path(f *types.Func) string {
	var parts []string
	for ; f != nil && len(parts) < 30; f = e.via[f] {
		parts = append(parts, f.FullName())
	}
	return strings.Join(parts, " ← ")
}

func (r *envReader) envVars(c component) envRead {
	out := envRead{names: map[string][]string{}}
	mainPkg := r.pkgs[module+"/"+c.main]
	if mainPkg == nil {
		return out
	}
	closure := map[string]bool{}
	var imports func(p *packages.Package)
	imports = func(p *packages.Package) {
		if closure[p.PkgPath] {
			return
		}
		closure[p.PkgPath] = true
		for path := range p.Imports {
			if q := r.pkgs[path]; q != nil {
				imports(q)
			}
		}
	}
	imports(mainPkg)
	reached := map[*types.Func]bool{}
	out.via = map[*types.Func]*types.Func{}
	var queue []*types.Func
	var current *types.Func
	add := func(f *types.Func) {
		f = f.Origin()
		if d, ok := r.decls[f]; ok && !reached[f] && closure[d.pkg.PkgPath] {
			reached[f] = true
			out.via[f] = current
			queue = append(queue, f)
		}
	}
	pkgsSeen := map[*packages.Package]bool{}
	var extra []ast.Node // package-level var initializers of the packages reached
	var extraPkg []*packages.Package
	typeSeen := map[*types.TypeName]bool{}

	for _, f := range mainPkg.Syntax {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && (fd.Name.Name == "main" || fd.Name.Name == "init") {
				add(mainPkg.TypesInfo.Defs[fd.Name].(*types.Func))
			}
		}
	}
	visit := func(n ast.Node, p *packages.Package) {
		r.walk(n, p, c, func(obj types.Object) {
			switch o := obj.(type) {
			case *types.Func:
				add(o)
				sig, _ := o.Type().(*types.Signature)
				if sig == nil || sig.Recv() == nil {
					return
				}
				iface, ok := sig.Recv().Type().Underlying().(*types.Interface)
				if !ok {
					return
				}
				for _, m := range r.methods[o.Name()] {
					recv := m.Type().(*types.Signature).Recv().Type()
					if ptr, ok := recv.(*types.Pointer); ok {
						recv = ptr.Elem()
					}
					if types.Implements(recv, iface) || types.Implements(types.NewPointer(recv), iface) {
						add(m)
					}
				}
			case *types.TypeName:
				if typeSeen[o] || o.Pkg() == nil || !strings.HasPrefix(o.Pkg().Path(), module) {
					return
				}
				typeSeen[o] = true
				// Its exported methods may be called through an interface outside the
				// module (http.Handler, fmt.Stringer…); unexported ones only from code
				// this walk follows.
				if named, ok := o.Type().(*types.Named); ok {
					for i := 0; i < named.NumMethods(); i++ {
						if m := named.Method(i); m.Exported() {
							add(m)
						}
					}
				}
			}
		})
	}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		current = f
		d := r.decls[f]
		if !pkgsSeen[d.pkg] {
			pkgsSeen[d.pkg] = true
			if len(d.pkg.Errors) > 0 {
				out.errors = append(out.errors, fmt.Sprintf("%s: %v", d.pkg.PkgPath, d.pkg.Errors[0]))
			}
			for _, file := range d.pkg.Syntax {
				for _, decl := range file.Decls {
					if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
						extra = append(extra, gd)
						extraPkg = append(extraPkg, d.pkg)
						visit(gd, d.pkg)
					}
					if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
						add(d.pkg.TypesInfo.Defs[fd.Name].(*types.Func))
					}
				}
			}
		}
		visit(d.decl.Body, d.pkg)
	}

	// Collect the names, following parameters to their callers until nothing changes.
	envParams := map[*types.Func]map[int]bool{}
	for changed := true; changed; {
		changed = false
		out.names = map[string][]string{}
		out.unresolved = nil
		collect := func(n ast.Node, p *packages.Package, fn *types.Func) {
			r.collect(n, p, fn, c, envParams, &out, func() { changed = true })
		}
		for f := range reached {
			collect(r.decls[f].decl.Body, r.decls[f].pkg, f)
		}
		for i, n := range extra {
			collect(n, extraPkg[i], nil)
		}
	}
	sort.Strings(out.unresolved)
	return out
}

// walk calls use for every object n refers to, skipping branches for other targets.
func (r *envReader) walk(n ast.Node, p *packages.Package, c component, use func(types.Object)) {
	inspect(n, p, c, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if obj := p.TypesInfo.Uses[id]; obj != nil {
				use(obj)
			}
		}
		return true
	})
}

// inspect is ast.Inspect without what component c never runs: the branches for another
// FUNCTION_TARGET (switch cases, if bodies), and other commands' entries in the CLI's
// command table.
func inspect(n ast.Node, p *packages.Package, c component, f func(ast.Node) bool) {
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		if n == nil {
			return false
		}
		if skip(n, p, c) {
			return false
		}
		if is, ok := n.(*ast.IfStmt); ok && bodyNotRun(is, p, c.target) {
			if !f(n) {
				return false
			}
			for _, part := range []ast.Node{is.Init, is.Cond, is.Else} {
				if part != nil {
					ast.Inspect(part, visit)
				}
			}
			return false
		}
		return f(n)
	}
	ast.Inspect(n, visit)
}

// skip reports whether the walk for c leaves n out: a case for another FUNCTION_TARGET, or
// another command's entry in the CLI's command table.
func skip(n ast.Node, p *packages.Package, c component) bool {
	if c.target != "" {
		if cc, ok := n.(*ast.CaseClause); ok && len(cc.List) > 0 {
			mentions := false
			for _, e := range cc.List {
				v, ok := constString(p.TypesInfo, e)
				if !ok || !functionTargets[v] {
					return false // not a switch on the target
				}
				mentions = mentions || v == c.target
			}
			return !mentions
		}
	}
	lit, ok := n.(*ast.CompositeLit)
	if !ok || c.command == "" || p.PkgPath != module+"/cli" {
		return false
	}
	for _, el := range lit.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == "name" {
				if v, ok := constString(p.TypesInfo, kv.Value); ok && v != c.command {
					return true
				}
			}
		}
	}
	return false
}

// bodyNotRun reports whether an if's body never runs for target: `x == T` for another
// target T, or `x != T` for the target itself.
func bodyNotRun(is *ast.IfStmt, p *packages.Package, target string) bool {
	be, ok := is.Cond.(*ast.BinaryExpr)
	if target == "" || !ok || (be.Op != token.EQL && be.Op != token.NEQ) {
		return false
	}
	for _, e := range []ast.Expr{be.X, be.Y} {
		if v, ok := constString(p.TypesInfo, e); ok && functionTargets[v] {
			return (be.Op == token.EQL) != (v == target)
		}
	}
	return false
}

// collect records the env names read in n (the body of fn, or a var initializer when fn
// is nil).
func (r *envReader) collect(n ast.Node, p *packages.Package, fn *types.Func, c component,
	envParams map[*types.Func]map[int]bool, out *envRead, changed func()) {
	info := p.TypesInfo
	// Range variables over literal lists, and getenv-shaped function literals' parameters.
	rangeVals := map[*types.Var][]string{}
	wrapperParams := map[*types.Var]bool{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.RangeStmt:
			lit, ok := n.X.(*ast.CompositeLit)
			if !ok {
				return true
			}
			var keys, vals []string
			for _, el := range lit.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if s, ok := constString(info, kv.Key); ok {
						keys = append(keys, s)
					}
					el = kv.Value
				}
				if s, ok := constString(info, el); ok {
					vals = append(vals, s)
				}
			}
			if id, ok := n.Key.(*ast.Ident); ok {
				if v, ok := info.Defs[id].(*types.Var); ok {
					if _, isMap := lit.Type.(*ast.MapType); isMap {
						rangeVals[v] = keys
					}
				}
			}
			if id, ok := n.Value.(*ast.Ident); ok {
				if v, ok := info.Defs[id].(*types.Var); ok {
					rangeVals[v] = vals
				}
			}
		case *ast.FuncLit:
			if tv, ok := info.Types[n]; ok && isGetenvSig(tv.Type) {
				for _, fld := range n.Type.Params.List {
					for _, nm := range fld.Names {
						if v, ok := info.Defs[nm].(*types.Var); ok {
							wrapperParams[v] = true
						}
					}
				}
			}
		}
		return true
	})
	var sig *types.Signature
	if fn != nil {
		sig = fn.Type().(*types.Signature)
	}
	paramIndex := func(v *types.Var) int {
		if sig == nil {
			return -1
		}
		for i := 0; i < sig.Params().Len(); i++ {
			if sig.Params().At(i) == v {
				return i
			}
		}
		return -1
	}
	record := func(arg ast.Expr) {
		where := p.Fset.Position(arg.Pos()).String()
		if s, ok := constString(info, arg); ok {
			out.names[s] = append(out.names[s], where)
			return
		}
		if id, ok := arg.(*ast.Ident); ok {
			if v, ok := info.Uses[id].(*types.Var); ok {
				if vals, ok := rangeVals[v]; ok {
					for _, s := range vals {
						out.names[s] = append(out.names[s], where)
					}
					return
				}
				if wrapperParams[v] {
					return // a getenv wrapper: its callers are read as getenv calls
				}
				if i := paramIndex(v); i >= 0 {
					if envParams[fn] == nil {
						envParams[fn] = map[int]bool{}
					}
					if !envParams[fn][i] {
						envParams[fn][i] = true
						changed()
					}
					return
				}
			}
		}
		out.unresolved = append(out.unresolved, where)
	}
	inspect(n, p, c, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		var obj types.Object
		switch f := ast.Unparen(call.Fun).(type) {
		case *ast.Ident:
			obj = info.Uses[f]
		case *ast.SelectorExpr:
			obj = info.Uses[f.Sel]
		case *ast.IndexExpr:
			if id, ok := f.X.(*ast.Ident); ok {
				obj = info.Uses[id]
			} else if sel, ok := f.X.(*ast.SelectorExpr); ok {
				obj = info.Uses[sel.Sel]
			}
		}
		switch o := obj.(type) {
		case *types.Func:
			switch o.FullName() {
			case "os.Getenv", "os.LookupEnv", "syscall.Getenv":
				record(call.Args[0])
				return true
			}
			for i := range envParams[o.Origin()] {
				if i < len(call.Args) {
					record(call.Args[i])
				}
			}
		case *types.Var:
			if isGetenvSig(o.Type()) && strings.Contains(strings.ToLower(o.Name()), "env") && len(call.Args) == 1 {
				record(call.Args[0])
			}
		}
		return true
	})
}

func constString(info *types.Info, e ast.Expr) (string, bool) {
	tv, ok := info.Types[e]
	if !ok || tv.Value == nil || tv.Value.Kind() != constant.String {
		return "", false
	}
	return constant.StringVal(tv.Value), true
}

// isGetenvSig reports whether t is func(string) string or func(string) (string, bool).
func isGetenvSig(t types.Type) bool {
	sig, ok := t.Underlying().(*types.Signature)
	if !ok || sig.Params().Len() != 1 || !isString(sig.Params().At(0).Type()) {
		return false
	}
	res := sig.Results()
	switch res.Len() {
	case 1:
		return isString(res.At(0).Type())
	case 2:
		b, ok := res.At(1).Type().Underlying().(*types.Basic)
		return isString(res.At(0).Type()) && ok && b.Kind() == types.Bool
	}
	return false
}

func isString(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Kind() == types.String
}

// tfEnv returns the env var names set on a Cloud Run resource (TYPE.NAME).
func tfEnv(cfg *tfConfig, addr string) (map[string]bool, bool) {
	typ, name, _ := strings.Cut(addr, ".")
	b := cfg.resources[typ][name]
	if b == nil {
		return nil, false
	}
	set := map[string]bool{}
	var find func(body *hclsyntax.Body)
	find = func(body *hclsyntax.Body) {
		for _, sb := range body.Blocks {
			if sb.Type == "env" {
				if n, ok := cfg.str(attr(sb.Body, "name")); ok {
					set[n] = true
				}
				continue
			}
			find(sb.Body)
		}
	}
	find(b.Body)
	return set, true
}

// checkEnv compares what a component reads with what its Cloud Run resource sets.
func checkEnv(c component, read map[string][]string, set map[string]bool) []string {
	var problems []string
	for _, n := range sortedKeys(read) {
		if !set[n] && envExempt[n] == "" && envExemptIn[c.name+" "+n] == "" {
			problems = append(problems, fmt.Sprintf("%s reads %s (%s) but %s does not set it: set it there, or exempt it in envExempt with a reason",
				c.name, n, read[n][0], c.tf))
		}
	}
	for _, n := range sortedKeys(set) {
		if _, ok := read[n]; !ok {
			problems = append(problems, fmt.Sprintf("%s sets %s, which %s's code never reads: remove it", c.tf, n, c.name))
		}
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEnvVarsSetOnCloudRun(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and type-checks the module")
	}
	r := loadModule(t)
	cfg := loadTF(t, ".")
	for _, c := range components {
		t.Run(c.name, func(t *testing.T) {
			if r.pkgs[module+"/"+c.main] == nil {
				t.Skipf("%s does not exist yet", c.main)
			}
			got := r.envVars(c)
			for _, e := range got.errors {
				t.Errorf("package does not load: %s", e)
			}
			for _, u := range got.unresolved {
				t.Errorf("%s: an env var read whose name is not a constant: the check can't see it (use a constant, or a literal list)", u)
			}
			t.Logf("%s reads %v", c.name, sortedKeys(got.names))
			// ENV_DEBUG=component:FuncFullName explains how the check reached a function.
			if comp, fn, _ := strings.Cut(os.Getenv("ENV_DEBUG"), ":"); comp == c.name {
				for f := range got.via {
					if f.FullName() == fn {
						t.Log(got.path(f))
					}
				}
			}
			set, ok := tfEnv(cfg, c.tf)
			if !ok {
				t.Fatalf("no %s in infra/", c.tf)
			}
			for _, p := range checkEnv(c, got.names, set) {
				t.Error(p)
			}
		})
	}
}
