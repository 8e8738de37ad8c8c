package dag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	tparse "text/template/parse"

	"gopkg.in/yaml.v3"
)

// TemplateFuncs lists the functions, besides text/template's builtins, that templates in a
// DAG file may call. The renderer must define every one of them.
var TemplateFuncs = []string{
	"var", "secret", "conn", "xcom", "json", "toJSON", "add", "sub", "format", "inTZ", "ds", "dateAdd",
	"shq", "bqIdent",
	"include", "duration",
}

// templateBuiltins are text/template's predefined functions.
var templateBuiltins = []string{
	"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
	"println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
}

var (
	templateErr  = regexp.MustCompile(`(?s)^template: [^:]*:(\d+): (.*)$`)
	undefinedFn  = regexp.MustCompile(`function "([^"]*)" not defined`)
	stubFuncs    = makeStubFuncs()
	allFuncNames = append(append([]string{}, TemplateFuncs...), templateBuiltins...)
)

// makeStubFuncs returns a FuncMap with every template function name, so that templates can be
// parsed (which checks function names) without rendering them.
func makeStubFuncs() template.FuncMap {
	m := template.FuncMap{}
	for _, name := range TemplateFuncs {
		m[name] = func(...any) (any, error) { return nil, nil }
	}
	return m
}

// checkGraph reports duplicate task ids, needs that name a missing task or the task itself, and
// cycles.
func (p *parser) checkGraph(d *DAG, infos []taskInfo) {
	first := map[string]int{}
	var ids []string
	for i, t := range d.Tasks {
		if t.ID == "" {
			continue
		}
		if j, dup := first[t.ID]; dup {
			p.add(infos[i].idLine, join(infos[i].path, "id"),
				fmt.Sprintf("task id %s is used twice: at line %d and line %d", quoteShort(t.ID), infos[j].idLine, infos[i].idLine),
				"task ids must be unique within a DAG; rename one of them")
			continue
		}
		first[t.ID] = i
		ids = append(ids, t.ID)
	}
	// down[u] lists the tasks that need u: the order in which tasks run.
	down := make([][]int, len(d.Tasks))
	for i, t := range d.Tasks {
		for j, up := range t.Needs {
			node := infos[i].needs[j]
			field := join(infos[i].path, "needs")
			if up == t.ID {
				p.add(node.Line, field, fmt.Sprintf("task %s needs itself", quoteShort(up)), "remove it from its own needs")
				continue
			}
			u, ok := first[up]
			if !ok {
				p.add(node.Line, field, fmt.Sprintf("task %s does not exist", quoteShort(up)), suggest(up, ids, "known tasks"))
				continue
			}
			if first[t.ID] == i {
				down[u] = append(down[u], i)
			}
		}
	}
	for _, scc := range stronglyConnected(down) {
		if len(scc) < 2 {
			continue
		}
		p.reportCycle(d, infos, down, scc)
	}
}

// stronglyConnected returns the strongly connected components of the graph (Tarjan).
func stronglyConnected(adj [][]int) [][]int {
	n := len(adj)
	idx := make([]int, n)
	low := make([]int, n)
	on := make([]bool, n)
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var out [][]int
	counter := 0
	var visit func(v int)
	visit = func(v int) {
		idx[v], low[v] = counter, counter
		counter++
		stack = append(stack, v)
		on[v] = true
		for _, w := range adj[v] {
			if idx[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], idx[w])
			}
		}
		if low[v] == idx[v] {
			var scc []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				scc = append(scc, w)
				if w == v {
					break
				}
			}
			out = append(out, scc)
		}
	}
	for v := range n {
		if idx[v] < 0 {
			visit(v)
		}
	}
	return out
}

// reportCycle prints one cycle through the first task (in file order) of a strongly connected
// component, in the order the tasks would run: a -> b -> c -> a.
func (p *parser) reportCycle(d *DAG, infos []taskInfo, down [][]int, scc []int) {
	in := map[int]bool{}
	start := scc[0]
	for _, v := range scc {
		in[v] = true
		start = min(start, v)
	}
	// Breadth-first from start along run order, back to start.
	prev := map[int]int{start: -1}
	queue := []int{start}
	last := -1
	for len(queue) > 0 && last < 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range down[v] {
			if w == start {
				last = v
				break
			}
			if _, seen := prev[w]; !seen && in[w] {
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	if last < 0 {
		return
	}
	var path []string
	for v := last; v >= 0; v = prev[v] {
		path = append(path, d.Tasks[v].ID)
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	path = append(path, d.Tasks[start].ID)
	line := infos[start].line
	for j, up := range d.Tasks[start].Needs {
		if up == d.Tasks[last].ID {
			line = infos[start].needs[j].Line
		}
	}
	p.add(line, join(infos[start].path, "needs"),
		"cycle: "+strings.Join(path, " -> "),
		fmt.Sprintf("remove %q from the needs of %q, or break another link of the cycle", d.Tasks[last].ID, d.Tasks[start].ID))
}

// checkTemplates checks that every template in a task's with (and for_each) parses, calls only
// known functions, and reads XCom only from tasks upstream of it.
func (p *parser) checkTemplates(d *DAG, infos []taskInfo) {
	first := map[string]int{}
	var ids []string
	for i, t := range d.Tasks {
		if _, dup := first[t.ID]; !dup && t.ID != "" {
			first[t.ID] = i
			ids = append(ids, t.ID)
		}
	}
	upstream := map[int]map[string]bool{}
	ancestors := func(i int) map[string]bool {
		if a, ok := upstream[i]; ok {
			return a
		}
		a := map[string]bool{}
		queue := []int{i}
		for len(queue) > 0 {
			v := queue[0]
			queue = queue[1:]
			for _, up := range d.Tasks[v].Needs {
				if u, ok := first[up]; ok && !a[up] {
					a[up] = true
					queue = append(queue, u)
				}
			}
		}
		upstream[i] = a
		return a
	}
	for i := range d.Tasks {
		check := func(n *yaml.Node, path string) {
			for _, call := range p.checkTemplate(n, path) {
				task := call.task
				switch _, exists := first[task]; {
				case !exists:
					p.add(call.line, path, fmt.Sprintf("%s reads task %s, which does not exist", call.fn, quoteShort(task)), suggest(task, ids, "known tasks"))
				case !ancestors(i)[task]:
					what := "its XCom"
					if call.fn == "duration" {
						what = "its duration"
					}
					p.add(call.line, path, fmt.Sprintf("%s reads task %s, which is not upstream of %q, so %s may not exist yet", call.fn, quoteShort(task), d.Tasks[i].ID, what),
						fmt.Sprintf("add %q to the needs of %q (directly or through another task)", task, d.Tasks[i].ID))
				}
			}
		}
		if infos[i].with != nil {
			walkStrings(infos[i].with, join(infos[i].path, "with"), check)
		}
		if infos[i].forEach != nil {
			check(resolve(infos[i].forEach), join(infos[i].path, "for_each"))
		}
	}
}

// walkStrings calls fn on every string scalar under n, without following aliases.
func walkStrings(n *yaml.Node, path string, fn func(n *yaml.Node, path string)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			name := n.Content[i].Value
			walkStrings(n.Content[i+1], join(path, name), fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkStrings(c, index(path, i), fn)
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			fn(n, path)
		}
	}
}

// templateValues are the names of the template context, written with a leading dot.
var templateValues = []string{
	"ds", "ds_nodash", "ts", "logical_date", "data_interval_start", "data_interval_end",
	"prev_data_interval_start_success", "params", "dag_run", "ti", "dag",
}

// funcHint suggests a known function, or a context value that was written without its dot.
func funcHint(name string) string {
	list := "functions: " + strings.Join(TemplateFuncs, ", ") + ", and text/template's builtins (printf, len, index, eq, ...)"
	if c := closest(name, allFuncNames); c != "" {
		return fmt.Sprintf("did you mean %q? %s", c, list)
	}
	if c := closest(name, templateValues); c != "" {
		return fmt.Sprintf("did you mean the value .%s? Values start with a dot; %s", c, list)
	}
	return list
}

// xcomCall is an `xcom "task"` or `duration "task"` call found in a template: both read an
// upstream task of the run.
type xcomCall struct {
	fn   string // xcom or duration
	task string
	line int
}

// checkTemplate parses the template in scalar n, reports why it does not parse, and returns
// its xcom calls with a literal task id.
func (p *parser) checkTemplate(n *yaml.Node, path string) []xcomCall {
	s := n.Value
	if !strings.Contains(s, "{{") {
		return nil
	}
	t, err := template.New("t").Funcs(stubFuncs).Parse(s)
	if err != nil {
		msg := err.Error()
		off := 0
		if m := templateErr.FindStringSubmatch(msg); m != nil {
			off, _ = strconv.Atoi(m[1])
			off--
			msg = m[2]
		}
		line := scalarLine(n, max(0, off))
		if m := undefinedFn.FindStringSubmatch(msg); m != nil {
			p.add(line, path, fmt.Sprintf("template calls unknown function %s", quoteShort(m[1])), funcHint(m[1]))
		} else {
			p.add(line, path, "template does not parse: "+msg,
				"templates are Go text/template: {{ .ds }}, {{ var \"NAME\" }}, {{ xcom \"task\" }}; write a literal {{ as {{ \"{{\" }}")
		}
		return nil
	}
	p.checkContext(n, path, t)
	var calls []xcomCall
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		walkTemplate(tt.Tree.Root, func(c *tparse.CommandNode) {
			if len(c.Args) < 2 {
				return
			}
			id, ok := c.Args[0].(*tparse.IdentifierNode)
			if !ok || id.Ident != "xcom" && id.Ident != "duration" {
				return
			}
			arg, ok := c.Args[1].(*tparse.StringNode)
			if !ok {
				return
			}
			off := 0
			if pos := int(c.Pos); pos >= 0 && pos <= len(s) {
				off = strings.Count(s[:pos], "\n")
			}
			calls = append(calls, xcomCall{fn: id.Ident, task: arg.Text, line: scalarLine(n, off)})
		})
	}
	return calls
}

// walkTemplate calls fn on every command in a template's parse tree.
func walkTemplate(n tparse.Node, fn func(*tparse.CommandNode)) {
	switch n := n.(type) {
	case *tparse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkTemplate(c, fn)
		}
	case *tparse.ActionNode:
		walkTemplate(n.Pipe, fn)
	case *tparse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkTemplate(c, fn)
		}
	case *tparse.CommandNode:
		fn(n)
		for _, a := range n.Args {
			walkTemplate(a, fn)
		}
	case *tparse.ChainNode:
		walkTemplate(n.Node, fn)
	case *tparse.IfNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	case *tparse.RangeNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	case *tparse.WithNode:
		walkTemplate(n.Pipe, fn)
		walkTemplate(n.List, fn)
		walkTemplate(n.ElseList, fn)
	case *tparse.TemplateNode:
		walkTemplate(n.Pipe, fn)
	}
}
