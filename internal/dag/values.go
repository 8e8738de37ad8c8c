package dag

import (
	"fmt"
	"strings"
	"text/template"
	tparse "text/template/parse"

	"gopkg.in/yaml.v3"
)

// Values are data: a shell command and a BigQuery query are code, so a template may not paste
// a value a DAG author does not write into them. Whoever triggers a run chooses its conf (and
// so .params), an upstream task's output chooses XCom and for_each items, operators set
// variables, and connections and secrets are not code either. Such values reach a shell
// through the environment ("$NAME" in the command) and BigQuery as query parameters (@name);
// a value that must be part of the text goes through a quoting function: shq for one shell
// word, bqIdent for a table path. The dates Updraft computes (.ds, .ts, …) and the ids of the
// DAG, task and run are Updraft's and stay allowed.

// codeArg is an argument of a task type whose text is run as code.
type codeArg struct {
	typ, arg string
	// quote is the function whose output is safe in this text.
	quote string
	hint  func(expr, name string) string
}

var codeArgs = []codeArg{
	{typ: "shell", arg: "command", quote: "shq", hint: func(expr, name string) string {
		env := strings.ToUpper(name)
		return fmt.Sprintf("pass the value through the environment and quote it in the command:\n"+
			"  with:\n    env: {%s: '{{ %s }}'}\n    command: echo \"$%s\"\n"+
			"or quote it as one shell word: {{ shq %s }}", env, expr, env, expr)
	}},
	{typ: "bigquery.query", arg: "sql", quote: "bqIdent", hint: func(expr, name string) string {
		return fmt.Sprintf("pass the value as a query parameter:\n"+
			"  with:\n    params: {%s: '{{ %s }}'}\n    sql: SELECT … WHERE col = @%s\n"+
			"or, for a table name, quote it as a table path: {{ bqIdent %s }}", name, expr, name, expr)
	}},
}

// untrustedRoots are the context values that carry what someone other than the DAG's author
// chose: the run's conf (laid over params), the whole dag_run, the for_each item.
var untrustedRoots = map[string]bool{"params": true, "dag_run": true, "item": true}

// trustedDagRun are the fields of .dag_run Updraft sets itself.
var trustedDagRun = map[string]bool{"run_id": true, "run_type": true, "logical_date": true}

// sourceFuncs return values from outside the DAG file.
// (A secret is the deployment's, not a run's: pasting it is not an injection, though env keeps
// it out of the process list.)
var sourceFuncs = map[string]bool{"var": true, "conn": true, "xcom": true, "json": true}

// safeFuncs return a bool, a number, a date or a duration whatever their arguments hold.
var safeFuncs = map[string]bool{
	"len": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "not": true,
	"ds": true, "dateAdd": true, "add": true, "sub": true, "inTZ": true, "duration": true,
}

// checkValues reports every template action that pastes an untrusted value into a shell
// command or a BigQuery query.
func (p *parser) checkValues(d *DAG, infos []taskInfo) {
	for i, t := range d.Tasks {
		if infos[i].with == nil {
			continue
		}
		for _, ca := range codeArgs {
			if t.Type != ca.typ {
				continue
			}
			n := mapValue(resolve(infos[i].with), ca.arg)
			if n == nil || n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "{{") {
				continue
			}
			p.checkCode(n, join(join(infos[i].path, "with"), ca.arg), ca)
		}
	}
}

// mapValue returns the value node of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// taintScope is what the template walk knows at one point: what dot holds, and which
// variables hold an untrusted value.
type taintScope struct {
	dotRoot, dotTainted bool
	vars                map[string]bool
}

// checkCode walks one template of code text.
func (p *parser) checkCode(n *yaml.Node, path string, ca codeArg) {
	s := n.Value
	t, err := template.New("t").Funcs(stubFuncs).Parse(s)
	if err != nil {
		return // checkTemplates reports it
	}
	c := &codeCheck{p: p, n: n, path: path, ca: ca, src: s}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Root == nil {
			continue
		}
		sc := taintScope{dotRoot: true, vars: map[string]bool{"$": false}}
		if tt.Name() != "t" { // a define'd template: its dot is whatever a caller passes
			sc = taintScope{dotTainted: true, vars: map[string]bool{}}
		}
		c.list(tt.Root, sc)
	}
}

type codeCheck struct {
	p    *parser
	n    *yaml.Node
	path string
	ca   codeArg
	src  string
}

func (c *codeCheck) list(l *tparse.ListNode, sc taintScope) {
	if l == nil {
		return
	}
	for _, node := range l.Nodes {
		switch x := node.(type) {
		case *tparse.ActionNode:
			tainted := c.pipe(x.Pipe, sc)
			if len(x.Pipe.Decl) > 0 {
				for _, v := range x.Pipe.Decl {
					sc.vars[v.Ident[0]] = sc.vars[v.Ident[0]] || tainted
				}
				continue
			}
			if tainted {
				c.report(x)
			}
		case *tparse.IfNode:
			c.pipe(x.Pipe, sc) // declarations only: a condition prints nothing
			c.list(x.List, sc)
			c.list(x.ElseList, sc)
		case *tparse.RangeNode:
			c.rebind(&x.BranchNode, sc)
		case *tparse.WithNode:
			c.rebind(&x.BranchNode, sc)
		}
	}
}

// rebind walks a range or with: inside, dot (and the variables declared) hold the pipeline's
// value, or its elements.
func (c *codeCheck) rebind(b *tparse.BranchNode, sc taintScope) {
	tainted := c.pipe(b.Pipe, sc)
	for _, v := range b.Pipe.Decl {
		sc.vars[v.Ident[0]] = sc.vars[v.Ident[0]] || tainted
	}
	c.list(b.List, taintScope{dotTainted: tainted, vars: sc.vars})
	c.list(b.ElseList, sc)
}

// pipe reports whether a pipeline's value holds an untrusted value.
func (c *codeCheck) pipe(pn *tparse.PipeNode, sc taintScope) bool {
	if pn == nil {
		return false
	}
	tainted := false
	for i, cmd := range pn.Cmds {
		tainted = c.command(cmd, sc, i > 0 && tainted)
	}
	return tainted
}

// command reports whether a command's value is untrusted; piped says whether the value
// piped into it (its last argument) is.
func (c *codeCheck) command(cmd *tparse.CommandNode, sc taintScope, piped bool) bool {
	if len(cmd.Args) == 0 {
		return piped
	}
	if id, ok := cmd.Args[0].(*tparse.IdentifierNode); ok {
		switch {
		case id.Ident == c.ca.quote, safeFuncs[id.Ident]:
			return false
		case sourceFuncs[id.Ident]:
			return true
		}
		tainted := piped
		for _, a := range cmd.Args[1:] {
			tainted = c.arg(a, sc) || tainted
		}
		return tainted
	}
	return c.arg(cmd.Args[0], sc) || piped
}

func (c *codeCheck) arg(n tparse.Node, sc taintScope) bool {
	switch x := n.(type) {
	case *tparse.FieldNode:
		return fieldTainted(x.Ident, sc)
	case *tparse.VariableNode:
		if x.Ident[0] == "$" {
			return fieldTainted(x.Ident[1:], taintScope{dotRoot: true})
		}
		tainted, known := sc.vars[x.Ident[0]]
		return tainted || !known
	case *tparse.ChainNode:
		return c.arg(x.Node, sc)
	case *tparse.DotNode:
		return sc.dotRoot || sc.dotTainted
	case *tparse.PipeNode:
		return c.pipe(x, sc)
	case *tparse.IdentifierNode:
		return c.command(&tparse.CommandNode{Args: []tparse.Node{x}}, sc, false)
	}
	return false // literals
}

// fieldTainted says whether .a.b… read from dot is untrusted.
func fieldTainted(idents []string, sc taintScope) bool {
	if !sc.dotRoot {
		return sc.dotTainted
	}
	if len(idents) == 0 {
		return true // the whole context, conf included
	}
	if idents[0] == "dag_run" {
		return len(idents) < 2 || !trustedDagRun[idents[1]]
	}
	return untrustedRoots[idents[0]]
}

// report adds the problem for one action that pastes an untrusted value.
func (c *codeCheck) report(a *tparse.ActionNode) {
	off := 0
	if pos := int(a.Pos); pos >= 0 && pos <= len(c.src) {
		off = strings.Count(c.src[:pos], "\n")
	}
	expr := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(a.String(), "{{"), "}}"))
	name := paramName(expr)
	arg := expr
	if strings.ContainsAny(expr, " |") && !strings.HasPrefix(expr, "(") {
		arg = "(" + expr + ")" // so that the hint's {{ shq (…) }} parses
	}
	what, attack := "a shell command", "$(rm -rf ~)"
	if c.ca.arg == "sql" {
		what, attack = "SQL", "'; DROP TABLE x; --"
	}
	c.p.add(scalarLine(c.n, off), c.path,
		fmt.Sprintf("{{ %s }} pastes a value the DAG file does not fix (conf and params, XCom, for_each items, variables, connections) into %s, where a value like %s runs as code",
			shortExpr(expr), what, attack),
		c.ca.hint(arg, name))
}

// paramName makes a variable or parameter name from an expression: .params.source_day →
// source_day, (xcom "fetch").orders → orders.
func paramName(expr string) string {
	f := strings.FieldsFunc(expr, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	for i := len(f) - 1; i >= 0; i-- {
		if w := f[i]; w != "" && !(w[0] >= '0' && w[0] <= '9') && !sourceFuncs[w] && w != "params" {
			return w
		}
	}
	return "value"
}

func shortExpr(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
