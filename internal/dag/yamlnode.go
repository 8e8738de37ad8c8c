package dag

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxValueNodes bounds how many YAML nodes the values of one file may expand to through aliases
// (a "billion laughs" file would otherwise take all memory).
const maxValueNodes = 200_000

// extensionPrefix starts top-level fields that the parser ignores, as in Docker Compose: a place
// to define YAML anchors that tasks then use ("x-env: &env {...}", "env: {<<: *env}").
const extensionPrefix = "x-"

// pair is one key: value of a YAML mapping.
type pair struct {
	name string
	key  *yaml.Node
	val  *yaml.Node
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or a YAML null.
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a YAML value for messages: "a list", "a string", ...
func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!timestamp":
			return "a date (" + n.Value + ")"
		case "!!str":
			return "a string (" + quoteShort(n.Value) + ")"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unexpected YAML node"
}

// join builds a field path: join("tasks[0]", "with") is "tasks[0].with".
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// index builds a list element path: index("tasks", 2) is "tasks[2]".
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// mapping returns the key: value pairs of mapping n, with merge keys ("<<: *base") applied:
// explicit keys win over merged ones. It reports keys that are not plain scalars and keys that
// appear twice.
func (p *parser) mapping(n *yaml.Node, path string) []pair {
	return p.mappingDepth(resolve(n), path, 0, map[*yaml.Node]bool{})
}

// mappingDepth does the work of mapping; merged holds the mappings already merged in, so that
// each is expanded once however many times it is named.
func (p *parser) mappingDepth(n *yaml.Node, path string, depth int, merged map[*yaml.Node]bool) []pair {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var explicit []pair
	var merges []*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		rk := resolve(k)
		if rk == nil || rk.Kind != yaml.ScalarNode {
			p.add(k.Line, path, "a key must be a plain name, not "+describe(k), "write keys as simple words, e.g. retries: 3")
			continue
		}
		if first, dup := seen[rk.Value]; dup {
			p.add(k.Line, join(path, rk.Value), fmt.Sprintf("%q is set twice (first at line %d)", rk.Value, first), "remove one of the two")
			continue
		}
		seen[rk.Value] = k.Line
		explicit = append(explicit, pair{name: rk.Value, key: k, val: v})
	}
	out := explicit
	if len(merges) > 0 {
		if depth > 20 {
			p.add(n.Line, path, "merge keys (<<) nest too deeply", "flatten the anchors")
			return out
		}
		for _, m := range merges {
			rm := resolve(m)
			var sources []*yaml.Node
			switch {
			case rm != nil && rm.Kind == yaml.MappingNode:
				sources = []*yaml.Node{rm}
			case rm != nil && rm.Kind == yaml.SequenceNode:
				for _, s := range rm.Content {
					sources = append(sources, resolve(s))
				}
			}
			for _, s := range sources {
				if s == nil || s.Kind != yaml.MappingNode || s == n {
					p.add(m.Line, path, "a merge key (<<) must name a mapping, not "+describe(s), "write <<: *anchor where the anchor is a mapping")
					continue
				}
				if merged[s] {
					continue
				}
				merged[s] = true
				for _, mp := range p.mappingDepth(s, path, depth+1, merged) {
					if _, dup := seen[mp.name]; dup {
						continue
					}
					seen[mp.name] = mp.key.Line
					out = append(out, mp)
				}
			}
		}
	}
	return out
}

// fields reads mapping n as a record with the given valid field names. It reports a value that
// is not a mapping and every unknown field, and returns the known fields by name.
func (p *parser) fields(n *yaml.Node, line int, path string, valid []string, what string) (map[string]pair, bool) {
	rn := resolve(n)
	if rn == nil || rn.Kind != yaml.MappingNode {
		msg := "must be a mapping of fields, not " + describe(n)
		if what != "" {
			msg = what + " " + msg
		}
		p.add(line, path, msg, "fields: "+listNames(valid, 30))
		return nil, false
	}
	out := map[string]pair{}
	for _, pr := range p.mapping(rn, path) {
		if path == "" && strings.HasPrefix(pr.name, extensionPrefix) {
			continue // an extension field: a place for YAML anchors, ignored
		}
		if !contains(valid, pr.name) {
			p.add(pr.key.Line, join(path, pr.name), fmt.Sprintf("unknown field %s", quoteShort(pr.name)), suggest(pr.name, valid, "valid fields"))
			continue
		}
		out[pr.name] = pr
	}
	return out, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// value converts a YAML node into a plain Go value: map[string]any, []any, string, int64,
// float64, bool or nil. Dates stay the strings they were written as.
func (p *parser) value(n *yaml.Node, path string) any {
	if p.budget <= 0 {
		return nil
	}
	p.budget--
	if p.budget == 0 {
		p.add(n.Line, path, "the file expands to too many values (aliases repeat too much)", "use fewer aliases")
		return nil
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil
		}
		return p.value(n.Alias, path)
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if p.expanding[n] {
			p.add(n.Line, path, "an alias refers to a value that contains itself", "anchors cannot be used inside their own value")
			return nil
		}
		p.expanding[n] = true
		defer delete(p.expanding, n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, pr := range p.mapping(n, path) {
			m[pr.name] = p.value(pr.val, join(path, pr.name))
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			l = append(l, p.value(c, index(path, i)))
		}
		return l
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b
			}
		case "!!int":
			var i int64
			if err := n.Decode(&i); err == nil {
				return i
			}
			var f float64
			if err := n.Decode(&f); err == nil {
				return f
			}
			p.add(n.Line, path, "number out of range: "+quoteShort(n.Value), "quote it to keep it as a string")
			return nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil {
				if math.IsInf(f, 0) || math.IsNaN(f) {
					p.add(n.Line, path, "not a finite number: "+n.Value, "quote it if you mean the string")
					return nil
				}
				return f
			}
		case "!!str", "!!timestamp", "!!binary":
			return n.Value
		default:
			p.add(n.Line, path, "unsupported YAML tag "+quoteShort(n.Tag), "remove the tag; values are plain strings, numbers, booleans, lists and mappings")
			return nil
		}
		return n.Value
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return p.value(n.Content[0], path)
		}
	}
	return nil
}
