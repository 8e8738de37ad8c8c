package infra

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// ---- The queries the code makes, read from fsstore's source.

// fsQuery is the shape of one Firestore query: what decides the index it needs.
type fsQuery struct {
	Col     string
	Group   bool // a collection-group query
	Filters []fsFilter
	Orders  []fsOrder
	Aggs    []fsAgg
	Where   string // function and position, for messages
}

type fsFilter struct{ Field, Op string }
type fsOrder struct {
	Field string
	Desc  bool
}
type fsAgg struct{ Kind, Field string } // Kind count (no field), sum or avg

func (q *fsQuery) clone() *fsQuery {
	c := *q
	c.Filters = append([]fsFilter(nil), q.Filters...)
	c.Orders = append([]fsOrder(nil), q.Orders...)
	c.Aggs = append([]fsAgg(nil), q.Aggs...)
	return &c
}

func (q *fsQuery) shape() string {
	var b strings.Builder
	b.WriteString(q.Col)
	if q.Group {
		b.WriteString(" (group)")
	}
	for _, f := range q.Filters {
		fmt.Fprintf(&b, " where %s %s", f.Field, f.Op)
	}
	for _, o := range q.Orders {
		d := "asc"
		if o.Desc {
			d = "desc"
		}
		fmt.Fprintf(&b, " order %s %s", o.Field, d)
	}
	for _, a := range q.Aggs {
		fmt.Fprintf(&b, " %s(%s)", a.Kind, a.Field)
	}
	return b.String()
}

// goFile is one parsed Go source file.
type goFile struct {
	name string
	file *ast.File
	fset *token.FileSet
}

func parseGoDir(t *testing.T, dir string) []goFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []goFile
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, goFile{name: p, file: f, fset: fset})
	}
	return out
}

func parseGoSource(t *testing.T, name, src string) []goFile {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return []goFile{{name: name, file: f, fset: fset}}
}

// stringConsts collects package-level string constants (name → value) of files.
func stringConsts(files []goFile) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := strLit(vs.Values[i]); ok {
							out[n.Name] = v
						}
					}
				}
			}
		}
	}
	return out
}

func strLit(e ast.Expr) (string, bool) {
	if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
		s, err := strconv.Unquote(bl.Value)
		return s, err == nil
	}
	return "", false
}

// queryScanner follows query values through one function: a Collection(…) call starts one,
// Where/OrderBy/aggregations extend it, variables carry it, and if/else or switch branches
// that extend it differently make separate variants. A query is recorded where it leaves
// the builder: run (Documents, Get), passed to a function, or returned.
type queryScanner struct {
	consts   map[string]string
	fset     *token.FileSet
	fn       string
	found    map[string]*fsQuery
	problems []string
}

type qenv map[string][]*fsQuery

func (e qenv) copy() qenv {
	c := qenv{}
	for k, v := range e {
		c[k] = v
	}
	return c
}

// scanQueries returns the distinct query shapes the files make, and what it could not read.
func scanQueries(files []goFile) ([]*fsQuery, []string) {
	s := &queryScanner{consts: stringConsts(files), found: map[string]*fsQuery{}}
	for _, f := range files {
		s.fset = f.fset
		for _, d := range f.file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			s.fn = fd.Name.Name
			s.stmts(fd.Body.List, qenv{})
		}
	}
	keys := make([]string, 0, len(s.found))
	for k := range s.found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*fsQuery, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.found[k])
	}
	return out, s.problems
}

func (s *queryScanner) record(qs []*fsQuery, at ast.Node) {
	for _, q := range qs {
		if len(q.Filters) == 0 && len(q.Orders) == 0 && len(q.Aggs) == 0 {
			continue // a whole collection: no index
		}
		if _, ok := s.found[q.shape()]; !ok {
			q = q.clone()
			q.Where = fmt.Sprintf("%s (%s)", s.fn, s.fset.Position(at.Pos()))
			s.found[q.shape()] = q
		}
	}
}

func (s *queryScanner) problem(at ast.Node, format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf("%s: %s: %s", s.fset.Position(at.Pos()), s.fn, fmt.Sprintf(format, args...)))
}

func (s *queryScanner) stmts(list []ast.Stmt, env qenv) {
	for _, st := range list {
		s.stmt(st, env)
	}
}

// merge sets env to the union of the branches' variants.
func merge(env qenv, branches ...qenv) {
	keys := map[string]bool{}
	for _, b := range branches {
		for k := range b {
			keys[k] = true
		}
	}
	for k := range keys {
		seen := map[string]bool{}
		var out []*fsQuery
		for _, b := range branches {
			for _, q := range b[k] {
				if !seen[q.shape()] {
					seen[q.shape()] = true
					out = append(out, q)
				}
			}
		}
		env[k] = out
	}
}

func (s *queryScanner) stmt(st ast.Stmt, env qenv) {
	switch st := st.(type) {
	case *ast.AssignStmt:
		for i, r := range st.Rhs {
			v := s.eval(r, env)
			if len(st.Lhs) == len(st.Rhs) {
				if id, ok := st.Lhs[i].(*ast.Ident); ok {
					if v != nil {
						env[id.Name] = v
					} else {
						delete(env, id.Name)
					}
				}
			}
		}
	case *ast.DeclStmt:
		if gd, ok := st.Decl.(*ast.GenDecl); ok {
			for _, sp := range gd.Specs {
				if vs, ok := sp.(*ast.ValueSpec); ok {
					for i, val := range vs.Values {
						if v := s.eval(val, env); v != nil && i < len(vs.Names) {
							env[vs.Names[i].Name] = v
						}
					}
				}
			}
		}
	case *ast.ExprStmt:
		s.eval(st.X, env)
	case *ast.ReturnStmt:
		for _, r := range st.Results {
			s.record(s.eval(r, env), r)
		}
	case *ast.DeferStmt:
		s.eval(st.Call, env)
	case *ast.GoStmt:
		s.eval(st.Call, env)
	case *ast.BlockStmt:
		s.stmts(st.List, env)
	case *ast.IfStmt:
		if st.Init != nil {
			s.stmt(st.Init, env)
		}
		s.eval(st.Cond, env)
		then, els := env.copy(), env.copy()
		s.stmts(st.Body.List, then)
		if st.Else != nil {
			s.stmt(st.Else, els)
		}
		merge(env, then, els)
	case *ast.SwitchStmt:
		if st.Init != nil {
			s.stmt(st.Init, env)
		}
		if st.Tag != nil {
			s.eval(st.Tag, env)
		}
		s.cases(st.Body, env)
	case *ast.TypeSwitchStmt:
		if st.Init != nil {
			s.stmt(st.Init, env)
		}
		s.cases(st.Body, env)
	case *ast.SelectStmt:
		s.cases(st.Body, env)
	case *ast.ForStmt:
		if st.Init != nil {
			s.stmt(st.Init, env)
		}
		body := env.copy()
		s.stmts(st.Body.List, body)
		merge(env, env.copy(), body)
	case *ast.RangeStmt:
		s.eval(st.X, env)
		body := env.copy()
		s.stmts(st.Body.List, body)
		merge(env, env.copy(), body)
	case *ast.LabeledStmt:
		s.stmt(st.Stmt, env)
	}
}

func (s *queryScanner) cases(body *ast.BlockStmt, env qenv) {
	branches := []qenv{}
	hasDefault := false
	for _, c := range body.List {
		b := env.copy()
		switch c := c.(type) {
		case *ast.CaseClause:
			hasDefault = hasDefault || c.List == nil
			s.stmts(c.Body, b)
		case *ast.CommClause:
			hasDefault = hasDefault || c.Comm == nil
			s.stmts(c.Body, b)
		}
		branches = append(branches, b)
	}
	if !hasDefault {
		branches = append(branches, env.copy())
	}
	merge(env, branches...)
}

// Query methods that return the query unchanged as far as indexes go.
var passThrough = map[string]bool{
	"Limit": true, "LimitToLast": true, "Offset": true, "StartAt": true, "StartAfter": true,
	"EndAt": true, "EndBefore": true, "Select": true, "SelectPaths": true, "Query": true,
}

func (s *queryScanner) eval(e ast.Expr, env qenv) []*fsQuery {
	switch e := e.(type) {
	case *ast.ParenExpr:
		return s.eval(e.X, env)
	case *ast.Ident:
		return env[e.Name]
	case *ast.SelectorExpr:
		if e.Sel.Name == "Query" { // CollectionRef.Query
			return s.eval(e.X, env)
		}
		s.eval(e.X, env)
		return nil
	case *ast.UnaryExpr:
		return s.eval(e.X, env)
	case *ast.BinaryExpr:
		s.eval(e.X, env)
		s.eval(e.Y, env)
		return nil
	case *ast.FuncLit:
		s.stmts(e.Body.List, env.copy())
		return nil
	case *ast.CompositeLit:
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				el = kv.Value
			}
			s.record(s.eval(el, env), el)
		}
		return nil
	case *ast.CallExpr:
		return s.call(e, env)
	}
	return nil
}

func (s *queryScanner) call(e *ast.CallExpr, env qenv) []*fsQuery {
	sel, isMethod := e.Fun.(*ast.SelectorExpr)
	if !isMethod {
		for _, a := range e.Args {
			s.record(s.eval(a, env), a)
		}
		return nil
	}
	name := sel.Sel.Name
	switch name {
	case "Collection", "CollectionGroup":
		s.eval(sel.X, env)
		col := "?"
		if len(e.Args) == 1 {
			if v, ok := strLit(e.Args[0]); ok {
				col = v
			} else if id, ok := e.Args[0].(*ast.Ident); ok {
				if v, ok := s.consts[id.Name]; ok {
					col = v
				} else {
					col = "?" + id.Name
				}
			}
		}
		return []*fsQuery{{Col: col, Group: name == "CollectionGroup"}}
	}
	base := s.eval(sel.X, env)
	if base == nil {
		for _, a := range e.Args {
			s.record(s.eval(a, env), a)
		}
		return nil
	}
	extend := func(f func(q *fsQuery)) []*fsQuery {
		out := make([]*fsQuery, len(base))
		for i, q := range base {
			c := q.clone()
			f(c)
			out[i] = c
		}
		return out
	}
	if strings.HasPrefix(base[0].Col, "?") && (name == "Where" || name == "OrderBy" || name == "NewAggregationQuery") {
		s.problem(e, "a query on a collection that is not a constant (%s): name the collection with a Col* constant", strings.TrimPrefix(base[0].Col, "?"))
	}
	switch {
	case name == "Where":
		if len(e.Args) != 3 {
			s.problem(e, "Where with %d arguments", len(e.Args))
			return nil
		}
		field, ok1 := s.str(e.Args[0])
		op, ok2 := strLit(e.Args[1])
		if !ok1 || !ok2 {
			s.problem(e, "Where with a field or operator that is not a literal: the index check can't read it")
		}
		return extend(func(q *fsQuery) { q.Filters = append(q.Filters, fsFilter{field, op}) })
	case name == "OrderBy":
		if len(e.Args) != 2 {
			s.problem(e, "OrderBy with %d arguments", len(e.Args))
			return nil
		}
		field, ok := s.str(e.Args[0])
		if !ok {
			s.problem(e, "OrderBy with a field that is not a literal")
		}
		desc := false
		switch d := e.Args[1].(type) {
		case *ast.SelectorExpr:
			desc = d.Sel.Name == "Desc"
		case *ast.Ident:
			desc = d.Name == "Desc"
		default:
			s.problem(e, "OrderBy with a direction that is not firestore.Asc or firestore.Desc")
		}
		return extend(func(q *fsQuery) { q.Orders = append(q.Orders, fsOrder{field, desc}) })
	case name == "NewAggregationQuery":
		return extend(func(*fsQuery) {})
	case name == "WithCount":
		return extend(func(q *fsQuery) { q.Aggs = append(q.Aggs, fsAgg{"count", ""}) })
	case name == "WithSum" || name == "WithAvg" || name == "WithSumPath" || name == "WithAvgPath":
		field, ok := "?", false
		if len(e.Args) > 0 {
			field, ok = s.str(e.Args[0])
		}
		if !ok {
			s.problem(e, "%s with a field that is not a literal", name)
		}
		kind := "sum"
		if strings.HasPrefix(name, "WithAvg") {
			kind = "avg"
		}
		return extend(func(q *fsQuery) { q.Aggs = append(q.Aggs, fsAgg{kind, field}) })
	case passThrough[name]:
		for _, a := range e.Args {
			s.eval(a, env)
		}
		return base
	case name == "WherePath" || name == "WhereEntity" || name == "OrderByPath" || name == "FindNearest":
		s.problem(e, "%s: the index check reads only Where, OrderBy and aggregations with literal fields", name)
		return nil
	default: // Documents, Get, GetAll, Snapshots…: the query runs here.
		s.record(base, e)
		return nil
	}
}

func (s *queryScanner) str(e ast.Expr) (string, bool) {
	if v, ok := strLit(e); ok {
		return v, true
	}
	if id, ok := e.(*ast.Ident); ok {
		v, ok := s.consts[id.Name]
		return v, ok
	}
	return "?", false
}

// ---- Which queries need a composite index, and which index.
//
// Firestore's documented rules (firebase.google.com/docs/firestore/query-data/index-overview,
// …/query-data/multiple-range-fields, …/query-data/aggregation-queries):
//   - Every field gets automatic single-field indexes (ascending, descending, array-contains),
//     so a query that filters and orders on one field needs nothing more.
//   - Equality filters (==, in) on several fields can be served by merging single-field
//     indexes; we still give each such query its exact composite index (equality fields
//     only), as Google's index-merging guidance recommends for queries on the hot path: a
//     merge join's cost grows with the fields' selectivity, an exact index's does not.
//   - An equality or array-contains filter combined with an order or a range on another
//     field, or orders/ranges on several fields, needs a composite index: the equality and
//     array-contains fields first (in any order), then the orderBy fields in the query's
//     order and directions, then range fields not ordered by (Firestore orders by them
//     implicitly, by name, in the last order's direction).
//   - sum() and avg() scan an index and read the aggregated field from it: "a field must be
//     indexed to calculate an aggregation" (Firestore's SUM/AVG launch post), and a filtered
//     aggregation uses the query's own index, so the aggregated fields follow the query's
//     fields in the same composite index. count() needs no field.
//   - Firestore appends __name__ to every composite index in the direction of its last field;
//     an index written with it is compared without it.

// idxField is one field of a composite index.
type idxField struct {
	Path     string
	Order    string // ASCENDING or DESCENDING; empty for an array field
	Contains bool   // array_config = CONTAINS
}

// idxNeed is the composite index one query needs.
type idxNeed struct {
	Col    string
	Group  bool
	Prefix []idxField // equality and array-contains fields, in any order
	Seq    []idxField // ordered and range fields, exactly
	Aggs   []string   // aggregated fields, in any order, after Seq
	Query  *fsQuery
}

func (n *idxNeed) String() string {
	var parts []string
	for _, f := range n.Prefix {
		parts = append(parts, f.String())
	}
	p := "{" + strings.Join(parts, ", ") + "}"
	parts = nil
	for _, f := range n.Seq {
		parts = append(parts, f.String())
	}
	for _, a := range n.Aggs {
		parts = append(parts, a+" (aggregated)")
	}
	if len(parts) > 0 {
		p += " then " + strings.Join(parts, ", ")
	}
	return n.Col + ": " + p
}

func (f idxField) String() string {
	if f.Contains {
		return f.Path + " CONTAINS"
	}
	return f.Path + " " + f.Order
}

var (
	equalityOps = map[string]bool{"==": true, "in": true}
	arrayOps    = map[string]bool{"array-contains": true, "array-contains-any": true}
	rangeOps    = map[string]bool{"<": true, "<=": true, ">": true, ">=": true, "!=": true, "not-in": true}
)

// neededIndex returns the composite index q needs, or nil when automatic single-field
// indexes serve it. An error means a query Firestore refuses or the rules don't cover.
func neededIndex(q *fsQuery) (*idxNeed, error) {
	n := &idxNeed{Col: q.Col, Group: q.Group, Query: q}
	fields := map[string]bool{}
	inPrefix := map[string]bool{}
	var ranges []string
	for _, f := range q.Filters {
		if f.Field == "__name__" {
			continue
		}
		fields[f.Field] = true
		switch {
		case equalityOps[f.Op]:
			if !inPrefix[f.Field] {
				inPrefix[f.Field] = true
				n.Prefix = append(n.Prefix, idxField{Path: f.Field, Order: "ASCENDING"})
			}
		case arrayOps[f.Op]:
			if inPrefix[f.Field] {
				return nil, fmt.Errorf("%s: %s both equality and array filter", q.Where, f.Field)
			}
			inPrefix[f.Field] = true
			n.Prefix = append(n.Prefix, idxField{Path: f.Field, Contains: true})
		case rangeOps[f.Op]:
			if !contains(ranges, f.Field) {
				ranges = append(ranges, f.Field)
			}
		default:
			return nil, fmt.Errorf("%s: unknown operator %q on %s", q.Where, f.Op, f.Field)
		}
	}
	dir := "ASCENDING"
	for _, o := range q.Orders {
		if o.Field == "__name__" || inPrefix[o.Field] {
			continue
		}
		fields[o.Field] = true
		dir = "ASCENDING"
		if o.Desc {
			dir = "DESCENDING"
		}
		n.Seq = append(n.Seq, idxField{Path: o.Field, Order: dir})
	}
	sort.Strings(ranges)
	for _, r := range ranges {
		if !hasPath(n.Seq, r) {
			n.Seq = append(n.Seq, idxField{Path: r, Order: dir})
		}
	}
	for _, a := range q.Aggs {
		if a.Field == "" {
			continue
		}
		fields[a.Field] = true
		if !inPrefix[a.Field] && !hasPath(n.Seq, a.Field) && !contains(n.Aggs, a.Field) {
			n.Aggs = append(n.Aggs, a.Field)
		}
	}
	if len(fields) <= 1 {
		return nil, nil
	}
	return n, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func hasPath(fs []idxField, p string) bool {
	for _, f := range fs {
		if f.Path == p {
			return true
		}
	}
	return false
}

// tfIndex is a google_firestore_index in the Terraform.
type tfIndex struct {
	Addr   string
	Col    string
	Group  bool
	Fields []idxField
}

func readIndexes(cfg *tfConfig) ([]tfIndex, []string) {
	var out []tfIndex
	var problems []string
	for _, b := range cfg.ofType("google_firestore_index") {
		ix := tfIndex{Addr: b.addr()}
		col, ok := cfg.str(attr(b.Body, "collection"))
		if !ok {
			problems = append(problems, b.addr()+": collection is not a literal")
			continue
		}
		ix.Col = col
		if s, ok := cfg.str(attr(b.Body, "query_scope")); ok && s == "COLLECTION_GROUP" {
			ix.Group = true
		}
		for _, fb := range subBlocks(b.Body, "fields") {
			var f idxField
			f.Path, _ = cfg.str(attr(fb.Body, "field_path"))
			f.Order, _ = cfg.str(attr(fb.Body, "order"))
			ac, _ := cfg.str(attr(fb.Body, "array_config"))
			f.Contains = ac == "CONTAINS"
			if f.Path == "" || (f.Order == "") == !f.Contains {
				problems = append(problems, fmt.Sprintf("%s: a field needs a literal field_path and either order or array_config = \"CONTAINS\"", b.addr()))
			}
			ix.Fields = append(ix.Fields, f)
		}
		// Firestore's implicit last field.
		if n := len(ix.Fields); n >= 2 && ix.Fields[n-1].Path == "__name__" {
			if ix.Fields[n-1].Order != ix.Fields[n-2].Order && !ix.Fields[n-2].Contains {
				problems = append(problems, b.addr()+": __name__ must follow the direction of the last field")
			}
			ix.Fields = ix.Fields[:n-1]
		}
		out = append(out, ix)
	}
	return out, problems
}

// matches reports whether index ix is exactly the index n describes.
func (n *idxNeed) matches(ix tfIndex) bool {
	if ix.Col != n.Col || ix.Group != n.Group || len(ix.Fields) != len(n.Prefix)+len(n.Seq)+len(n.Aggs) {
		return false
	}
	fs := ix.Fields
	want := map[string]bool{} // path → contains
	for _, p := range n.Prefix {
		want[p.Path] = p.Contains
	}
	for _, f := range fs[:len(n.Prefix)] {
		c, ok := want[f.Path]
		if !ok || c != f.Contains {
			return false
		}
		delete(want, f.Path)
	}
	fs = fs[len(n.Prefix):]
	for i, s := range n.Seq {
		if fs[i] != s {
			return false
		}
	}
	fs = fs[len(n.Seq):]
	for _, f := range fs {
		if f.Contains || !contains(n.Aggs, f.Path) {
			return false
		}
	}
	return len(uniquePaths(fs)) == len(fs)
}

func uniquePaths(fs []idxField) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		m[f.Path] = true
	}
	return m
}

// checkIndexes compares the indexes the queries need with the Terraform's, both ways.
func checkIndexes(queries []*fsQuery, cfg *tfConfig) []string {
	indexes, problems := readIndexes(cfg)
	used := make([]bool, len(indexes))
	for _, q := range queries {
		n, err := neededIndex(q)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if n == nil {
			continue
		}
		found := false
		for i, ix := range indexes {
			if n.matches(ix) {
				found, used[i] = true, true
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("no google_firestore_index for %s [%s]: add one with %s", q.Where, q.shape(), n))
		}
	}
	seen := map[string]string{}
	for i, ix := range indexes {
		key := fmt.Sprint(ix.Col, ix.Group, ix.Fields)
		if other, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("%s duplicates %s", ix.Addr, other))
		}
		seen[key] = ix.Addr
		if !used[i] {
			problems = append(problems, fmt.Sprintf("%s (%s %v) serves no query the code makes: remove it, or it drifts", ix.Addr, ix.Col, ix.Fields))
		}
	}
	return problems
}

func TestFirestoreIndexesMatchQueries(t *testing.T) {
	queries, problems := scanQueries(parseGoDir(t, "../internal/fsstore"))
	for _, p := range problems {
		t.Error(p)
	}
	if len(queries) < 10 {
		t.Fatalf("found only %d queries in fsstore: is the scanner still reading it?", len(queries))
	}
	for _, q := range queries {
		t.Logf("query %s: %s", q.Where, q.shape())
	}
	for _, p := range checkIndexes(queries, loadTF(t, ".")) {
		t.Error(p)
	}
}

// TestQueriesOnlyInFsstore: the index check reads fsstore alone, so no other package may
// build Firestore queries.
func TestQueriesOnlyInFsstore(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || p == filepath.Join(root, "internal", "fsstore")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		for _, bad := range queryBuilders(t, p) {
			t.Errorf("%s builds a Firestore query (%s): queries belong in fsstore, where the index check reads them", p, bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// queryBuilders lists the query-building calls of a file that imports the Firestore client.
func queryBuilders(t *testing.T, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	imported := false
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == "cloud.google.com/go/firestore" || strings.HasPrefix(p, "cloud.google.com/go/firestore/") {
			imported = true
		}
	}
	if !imported {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
				switch sel.Sel.Name {
				case "Where", "WherePath", "WhereEntity", "OrderBy", "OrderByPath", "NewAggregationQuery", "CollectionGroup":
					out = append(out, fmt.Sprintf("%s at %s", sel.Sel.Name, fset.Position(c.Pos())))
				}
			}
		}
		return true
	})
	return out
}

// ---- TTL: collections whose documents carry expire_at.

// expiringCollections returns the collections fsstore writes or reads with a record type
// that has a `firestore:"expire_at"` field, or with an "expire_at" field update.
func expiringCollections(fsFiles, recordFiles []goFile) []string {
	consts := stringConsts(fsFiles)
	// Record types (package-qualified) with expire_at, embedded structs included.
	type structInfo struct {
		expire bool
		embeds []string
	}
	structs := map[string]*structInfo{}
	addStructs := func(files []goFile) {
		for _, f := range files {
			pkg := f.file.Name.Name
			ast.Inspect(f.file, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				si := &structInfo{}
				for _, fld := range st.Fields.List {
					if fld.Tag != nil {
						tag, _ := strconv.Unquote(fld.Tag.Value)
						if name, _, _ := strings.Cut(reflect.StructTag(tag).Get("firestore"), ","); name == "expire_at" {
							si.expire = true
						}
					}
					if len(fld.Names) == 0 {
						si.embeds = append(si.embeds, typeName(pkg, fld.Type))
					}
				}
				structs[pkg+"."+ts.Name.Name] = si
				return true
			})
		}
	}
	addStructs(fsFiles)
	addStructs(recordFiles)
	for changed := true; changed; {
		changed = false
		for _, si := range structs {
			for _, e := range si.embeds {
				if o := structs[e]; o != nil && o.expire && !si.expire {
					si.expire, changed = true, true
				}
			}
		}
	}
	expiring := func(t string) bool { return structs[t] != nil && structs[t].expire }

	cols := map[string]bool{}
	for _, f := range fsFiles {
		pkg := f.file.Name.Name
		for _, d := range f.file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			vars := map[string]string{} // parameter or variable → its type
			for _, fl := range []*ast.FieldList{fd.Recv, fd.Type.Params} {
				if fl == nil {
					continue
				}
				for _, p := range fl.List {
					for _, n := range p.Names {
						vars[n.Name] = typeName(pkg, p.Type)
					}
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if vs, ok := n.(*ast.ValueSpec); ok && vs.Type != nil {
					for _, nm := range vs.Names {
						vars[nm.Name] = typeName(pkg, vs.Type)
					}
				}
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				var colsHere []string
				carries := false
				ast.Inspect(call, func(m ast.Node) bool {
					switch m := m.(type) {
					case *ast.Ident:
						if v, ok := consts[m.Name]; ok && strings.HasPrefix(m.Name, "Col") {
							colsHere = append(colsHere, v)
						}
						if expiring(vars[m.Name]) {
							carries = true
						}
					case *ast.IndexExpr: // get[T](…), queryAll[T](…)
						if expiring(typeName(pkg, m.Index)) {
							carries = true
						}
					case *ast.CompositeLit:
						if m.Type != nil && expiring(typeName(pkg, m.Type)) {
							carries = true
						}
					case *ast.BasicLit:
						if v, ok := strLit(m); ok && v == "expire_at" {
							carries = true
						}
					}
					return true
				})
				if carries {
					for _, c := range colsHere {
						cols[c] = true
					}
				}
				return true
			})
		}
	}
	out := make([]string, 0, len(cols))
	for c := range cols {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// typeName names a type expression as pkg.Name (pointers, slices and generic
// instantiations stripped to their element).
func typeName(pkg string, e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return typeName(pkg, e.X)
	case *ast.ArrayType:
		return typeName(pkg, e.Elt)
	case *ast.IndexExpr: // Versioned[T]
		return typeName(pkg, e.Index)
	case *ast.Ident:
		return pkg + "." + e.Name
	case *ast.SelectorExpr:
		if id, ok := e.X.(*ast.Ident); ok {
			return id.Name + "." + e.Sel.Name
		}
	}
	return ""
}

// checkTTL reports collections with expire_at but no TTL policy, and TTL policies that are
// not on expire_at or name no collection the code has.
func checkTTL(expiring []string, allCols map[string]bool, cfg *tfConfig) []string {
	var problems []string
	have := map[string]bool{}
	for _, b := range cfg.ofType("google_firestore_field") {
		if subBlock(b.Body, "ttl_config") == nil {
			continue
		}
		if f, _ := cfg.str(attr(b.Body, "field")); f != "expire_at" {
			problems = append(problems, b.addr()+": a TTL policy on a field other than expire_at")
		}
		var cols []string
		if c, ok := cfg.str(attr(b.Body, "collection")); ok {
			cols = []string{c}
		} else if refsEach(attr(b.Body, "collection")) {
			cols, ok = cfg.strings(attr(b.Body, "for_each"))
			if !ok {
				problems = append(problems, b.addr()+": for_each is not a literal list")
			}
		} else {
			problems = append(problems, b.addr()+": collection is not a literal")
		}
		for _, c := range cols {
			have[c] = true
			if !allCols[c] {
				problems = append(problems, fmt.Sprintf("%s: TTL on collection %q, which fsstore has no Col* constant for", b.addr(), c))
			}
		}
	}
	for _, c := range expiring {
		if !have[c] {
			problems = append(problems, fmt.Sprintf("collection %q is written with expire_at but has no TTL policy: add it to google_firestore_field.ttl", c))
		}
	}
	return problems
}

func TestTTLPolicies(t *testing.T) {
	fs := parseGoDir(t, "../internal/fsstore")
	expiring := expiringCollections(fs, parseGoDir(t, "../scheduler"))
	if len(expiring) == 0 {
		t.Fatal("no collection carries expire_at: is the scanner still reading fsstore?")
	}
	t.Logf("collections with expire_at: %v", expiring)
	all := map[string]bool{}
	for name, v := range stringConsts(fs) {
		if strings.HasPrefix(name, "Col") {
			all[v] = true
		}
	}
	for _, p := range checkTTL(expiring, all, loadTF(t, ".")) {
		t.Error(p)
	}
}
