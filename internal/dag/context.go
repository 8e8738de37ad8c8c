package dag

import (
	"fmt"
	"strings"
	"text/template"
	tparse "text/template/parse"

	"gopkg.in/yaml.v3"
)

// TemplateContext names the values a task's templates can read, written with a leading dot
// ({{ .ds }}); render.Data builds exactly these (a test keeps them in step).
var TemplateContext = []string{
	"ds", "ds_nodash", "ts", "ts_nodash", "logical_date", "data_interval_start", "data_interval_end",
	"prev_data_interval_start_success", "params", "dag_run", "run_id", "ti", "dag", "item", "index",
}

// templateContextFields are the keys of the context's maps whose keys are fixed (params and
// conf are the user's).
var templateContextFields = map[string][]string{
	"dag_run": {"run_id", "conf", "run_type", "logical_date"},
	"ti":      {"task_id", "try_number", "max_tries", "log_url"},
	"dag":     {"dag_id", "owner", "timezone"},
}

// checkContext reports the fields of the template context a parsed template reads that do not
// exist ({{ .dss }}), where the dot is still the context: at the top level and in if/else,
// not inside range or with (whose dot is an element), and $.name anywhere.
func (p *parser) checkContext(n *yaml.Node, path string, t *template.Template) {
	if t == nil {
		return
	}
	seen := map[string]bool{}
	src := n.Value
	report := func(idents []string, pos tparse.Pos) {
		if len(idents) == 0 {
			return
		}
		name := idents[0]
		known := false
		for _, k := range TemplateContext {
			if k == name {
				known = true
				break
			}
		}
		if !known {
			if !seen[name] {
				seen[name] = true
				p.add(scalarLine(n, lineOffset(src, pos)), path, fmt.Sprintf("template reads .%s, which is not in the context", name), contextHint(name))
			}
			return
		}
		fields, fixed := templateContextFields[name]
		if !fixed || len(idents) < 2 {
			return
		}
		for _, f := range fields {
			if f == idents[1] {
				return
			}
		}
		key := name + "." + idents[1]
		if !seen[key] {
			seen[key] = true
			p.add(scalarLine(n, lineOffset(src, pos)), path, fmt.Sprintf("template reads .%s, which is not in the context", key),
				fmt.Sprintf(".%s has %s", name, "."+strings.Join(fields, ", .")))
		}
	}
	var walk func(node tparse.Node, dotIsContext bool)
	walkPipe := func(pipe *tparse.PipeNode, dotIsContext bool) {
		if pipe == nil {
			return
		}
		for _, c := range pipe.Cmds {
			for _, arg := range c.Args {
				walk(arg, dotIsContext)
			}
		}
	}
	walk = func(node tparse.Node, dotIsContext bool) {
		switch x := node.(type) {
		case *tparse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, dotIsContext)
			}
		case *tparse.ActionNode:
			walkPipe(x.Pipe, dotIsContext)
		case *tparse.PipeNode:
			walkPipe(x, dotIsContext)
		case *tparse.FieldNode:
			if dotIsContext {
				report(x.Ident, x.Pos)
			}
		case *tparse.ChainNode:
			walk(x.Node, dotIsContext)
		case *tparse.VariableNode:
			if len(x.Ident) > 1 && x.Ident[0] == "$" {
				report(x.Ident[1:], x.Pos)
			}
		case *tparse.IfNode:
			walkPipe(x.Pipe, dotIsContext)
			walk(x.List, dotIsContext)
			walk(x.ElseList, dotIsContext)
		case *tparse.RangeNode:
			walkPipe(x.Pipe, dotIsContext)
			walk(x.List, false)
			walk(x.ElseList, dotIsContext)
		case *tparse.WithNode:
			walkPipe(x.Pipe, dotIsContext)
			walk(x.List, false)
			walk(x.ElseList, dotIsContext)
		case *tparse.TemplateNode:
			walkPipe(x.Pipe, dotIsContext)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root, true)
		}
	}
}

// lineOffset is the line of pos within a template's text, counted from 0.
func lineOffset(s string, pos tparse.Pos) int {
	if p := int(pos); p >= 0 && p <= len(s) {
		return strings.Count(s[:p], "\n")
	}
	return 0
}

// contextHint suggests the context value closest to a misspelt one.
func contextHint(name string) string {
	list := "values: ." + strings.Join(TemplateContext, ", .")
	if c := closest(name, TemplateContext); c != "" {
		return fmt.Sprintf("did you mean .%s? %s", c, list)
	}
	return list
}

// ValidContextField reports whether validation accepts .name.field (name one of the context's
// fixed maps: dag_run, ti, dag).
func ValidContextField(name, field string) bool {
	for _, f := range templateContextFields[name] {
		if f == field {
			return true
		}
	}
	return false
}
