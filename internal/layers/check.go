package layers

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Graph maps a package's import path to the import paths it imports directly (build
// constraints of the loading platform applied, test files excluded).
type Graph map[string][]string

// Load returns the import graph of the packages matching patterns in the module at dir, with
// every package they depend on, the standard library's included.
func Load(dir string, patterns ...string) (Graph, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps,
		Dir:  dir,
	}
	roots, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, fmt.Errorf("layers: load %s in %s: %w", strings.Join(patterns, " "), dir, err)
	}
	g := Graph{}
	var errs []string
	packages.Visit(roots, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
		imps := make([]string, 0, len(p.Imports))
		for _, imp := range p.Imports {
			imps = append(imps, imp.PkgPath)
		}
		sort.Strings(imps)
		g[p.PkgPath] = imps
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("layers: load %s in %s:\n%s", strings.Join(patterns, " "), dir, strings.Join(errs, "\n"))
	}
	return g, nil
}

// A Rule is one row of the table: the packages in From (minus those in Except) must not
// import, or with Reach must not reach through any chain of imports, a package matching
// Forbid unless it also matches Allow.
//
// Patterns are import paths, as `go list` takes them: "P" is the package P, "P/..." is P and
// every package below it, "..." is every package, and "std" is every standard-library package
// (one whose first path element has no dot). In a Table, patterns starting with "./" are
// relative to the module, and "$name" stands for the patterns of the table's group name.
type Rule struct {
	// Name identifies the rule in messages and in docs/architecture.md.
	Name   string
	From   []string
	Except []string
	// Reach makes the rule transitive: every chain of imports from a From package is
	// followed, and stops at the first forbidden package on it. Without Reach only From's own
	// imports count.
	Reach  bool
	Forbid []string
	Allow  []string
	// Why is the reason, in one line: the prose the packages' doc.go used to carry.
	Why string
	// Exempt lists today's violations that are tolerated: import edges the check does not
	// follow ("importer imported"). Each must still be needed, or the check reports it.
	Exempt []Edge
}

// An Edge is an import: From imports To.
type Edge struct {
	From, To string
	// Why says why the edge is tolerated and what removes it.
	Why string
}

// A Table is a set of rules over one module.
type Table struct {
	// Module is the module path that "./" in patterns stands for.
	Module string
	// Groups are named lists of patterns; "$name" in a pattern list stands for one.
	Groups []Group
	Rules  []Rule
}

// A Group names a list of patterns that several rules share.
type Group struct {
	Name     string
	Patterns []string
	// Doc says what the packages have in common.
	Doc string
}

// A Finding is one thing the check found wrong: a violation of a rule, an exemption that is
// no longer needed, or a pattern of the module that matches no package (a renamed package
// would otherwise leave a rule checking nothing).
type Finding struct {
	Rule string
	// Chain is the import chain of a violation, from the importer to the forbidden package,
	// with the module's prefix trimmed to "./".
	Chain []string
	// Stale is the exemption that no longer excuses anything.
	Stale *Edge
	// Pattern is the pattern that matches no package.
	Pattern string
	// Bad says what is wrong with the rule itself (a group that does not exist).
	Bad string
}

// Importer is the package whose imports break the rule.
func (f Finding) Importer() string { return f.Chain[0] }

// Forbidden is the forbidden package the importer reaches.
func (f Finding) Forbidden() string { return f.Chain[len(f.Chain)-1] }

func (f Finding) String() string {
	switch {
	case f.Stale != nil:
		return fmt.Sprintf("rule %s: exemption %s -> %s is no longer needed: remove it from the table", f.Rule, f.Stale.From, f.Stale.To)
	case f.Bad != "":
		return fmt.Sprintf("rule %s: %s: fix the table", f.Rule, f.Bad)
	case f.Pattern != "":
		return fmt.Sprintf("rule %s: pattern %q matches no package of the module: fix the table", f.Rule, f.Pattern)
	case len(f.Chain) == 2:
		return fmt.Sprintf("rule %s: %s imports %s", f.Rule, f.Importer(), f.Forbidden())
	default:
		return fmt.Sprintf("rule %s: %s reaches %s via %s", f.Rule, f.Importer(), f.Forbidden(), strings.Join(f.Chain, " -> "))
	}
}

// Check checks every rule of t over g and returns what it found, rule by rule in the table's
// order: for each, the patterns that match nothing, the violations (by importer, then
// forbidden package) and the exemptions no longer needed.
func (t Table) Check(g Graph) []Finding {
	var out []Finding
	for _, r := range t.Rules {
		out = append(out, t.check(g, r)...)
	}
	return out
}

func (t Table) check(g Graph, r Rule) []Finding {
	var out []Finding
	for _, list := range []*[]string{&r.From, &r.Except, &r.Forbid, &r.Allow} {
		expanded, err := t.expand(*list, nil)
		if err != nil {
			return append(out, Finding{Rule: r.Name, Bad: err.Error()})
		}
		*list = expanded
	}
	for _, p := range r.From {
		if t.unmatched(g, p) {
			out = append(out, Finding{Rule: r.Name, Pattern: p})
		}
	}
	for _, list := range [][]string{r.Except, r.Forbid, r.Allow} {
		for _, p := range list {
			if strings.HasPrefix(p, "./") && t.unmatched(g, p) {
				out = append(out, Finding{Rule: r.Name, Pattern: p})
			}
		}
	}
	exempt := map[[2]string]bool{}
	for _, e := range r.Exempt {
		exempt[[2]string{t.abs(e.From), t.abs(e.To)}] = true
	}
	out = append(out, t.violations(g, r, exempt)...)
	for i, e := range r.Exempt {
		others := map[[2]string]bool{}
		for k := range exempt {
			others[k] = true
		}
		delete(others, [2]string{t.abs(e.From), t.abs(e.To)})
		if !t.onChain(g, r, others, t.abs(e.From), t.abs(e.To)) {
			out = append(out, Finding{Rule: r.Name, Stale: &r.Exempt[i]})
		}
	}
	return out
}

// onChain tells whether the import a -> b exists and lies on a chain that would break r were
// it not exempt: a is one of r's packages or (with Reach) reached from one, and b is
// forbidden or (with Reach) reaches a forbidden package, without following the other
// exempt edges.
func (t Table) onChain(g Graph, r Rule, exempt map[[2]string]bool, a, b string) bool {
	covered := func(p string) bool { return t.matchAny(r.From, p) && !t.matchAny(r.Except, p) }
	if !slices.Contains(g[a], b) || t.forbidden(r, a) && !covered(a) {
		return false
	}
	if !r.Reach {
		return covered(a) && t.forbidden(r, b)
	}
	var starts []string
	for p := range g {
		if covered(p) {
			starts = append(starts, p)
		}
	}
	return slices.Contains(t.walk(g, r, exempt, starts), a) &&
		slices.ContainsFunc(t.walk(g, r, exempt, []string{b}), func(p string) bool { return t.forbidden(r, p) })
}

// walk returns every package reached from starts, starts included, not following exempt
// edges nor going past forbidden packages (but out of a start, as violations does).
func (t Table) walk(g Graph, r Rule, exempt map[[2]string]bool, starts []string) []string {
	seen := map[string]bool{}
	isStart := map[string]bool{}
	for _, s := range starts {
		isStart[s] = true
	}
	var out []string
	queue := slices.Clone(starts)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		if t.forbidden(r, p) && !isStart[p] {
			continue
		}
		for _, imp := range g[p] {
			if !exempt[[2]string{p, imp}] {
				queue = append(queue, imp)
			}
		}
	}
	return out
}

func (t Table) forbidden(r Rule, p string) bool {
	return t.matchAny(r.Forbid, p) && !t.matchAny(r.Allow, p)
}

// violations walks from every package r covers, breadth first so each chain is a shortest
// one, not following exempt edges and stopping at forbidden packages.
func (t Table) violations(g Graph, r Rule, exempt map[[2]string]bool) []Finding {
	var out []Finding
	for _, from := range sortedKeys(g) {
		if !t.matchAny(r.From, from) || t.matchAny(r.Except, from) {
			continue
		}
		parent := map[string]string{from: ""}
		queue := []string{from}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			for _, imp := range g[p] {
				if _, seen := parent[imp]; seen || exempt[[2]string{p, imp}] {
					continue
				}
				parent[imp] = p
				if t.forbidden(r, imp) {
					var chain []string
					for q := imp; q != ""; q = parent[q] {
						chain = append(chain, t.rel(q))
					}
					slices.Reverse(chain)
					out = append(out, Finding{Rule: r.Name, Chain: chain})
					continue
				}
				if r.Reach {
					queue = append(queue, imp)
				}
			}
		}
	}
	return out
}

// expand replaces group references by their patterns; seen guards against a group that
// refers to itself.
func (t Table) expand(patterns []string, seen []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		name, ok := strings.CutPrefix(p, "$")
		if !ok {
			out = append(out, p)
			continue
		}
		if slices.Contains(seen, name) {
			return nil, fmt.Errorf("group %q refers to itself via %s", name, strings.Join(append(seen, name), " -> "))
		}
		i := slices.IndexFunc(t.Groups, func(gr Group) bool { return gr.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("no group named %q", name)
		}
		more, err := t.expand(t.Groups[i].Patterns, append(seen, name))
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

func (t Table) unmatched(g Graph, pattern string) bool {
	for p := range g {
		if t.match(pattern, p) {
			return false
		}
	}
	return true
}

func (t Table) matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if t.match(p, path) {
			return true
		}
	}
	return false
}

func (t Table) match(pattern, path string) bool {
	switch pattern = t.abs(pattern); {
	case pattern == "...":
		return true
	case pattern == "std":
		first, _, _ := strings.Cut(path, "/")
		return !strings.Contains(first, ".")
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return path == base || strings.HasPrefix(path, base+"/")
	default:
		return path == pattern
	}
}

// abs turns a module-relative pattern or path ("./x") into a full one.
func (t Table) abs(p string) string {
	if p == "./..." {
		return t.Module + "/..."
	}
	if rest, ok := strings.CutPrefix(p, "./"); ok {
		return t.Module + "/" + rest
	}
	return p
}

// rel shortens the module's paths to "./x" for messages.
func (t Table) rel(path string) string {
	if rest, ok := strings.CutPrefix(path, t.Module+"/"); ok {
		return "./" + rest
	}
	return path
}

func sortedKeys(g Graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
