package dag

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParamSpec is a typed param (Airflow's Param): what a trigger's conf may set it to.
//
//	params:
//	  region: {default: kr, enum: [kr, jp]}
//	  day: {default: "", pattern: '\d{4}-\d{2}-\d{2}'}
//	  limit: {default: 10, type: integer}
//
// A param written as a mapping with a default and only these keys is typed; any other value
// is a plain default whose JSON kind a conf value must share.
type ParamSpec struct {
	// Type is string, number, integer, boolean, list or object; the default's kind when unset.
	Type string `json:"type,omitempty"`
	// Enum lists the values a conf may give.
	Enum []any `json:"enum,omitempty"`
	// Pattern is a regular expression a string value must match whole.
	Pattern     string `json:"pattern,omitempty"`
	Description string `json:"description,omitempty"`
}

var paramSpecKeys = []string{"default", "type", "enum", "pattern", "description"}

var paramTypes = []string{"string", "number", "integer", "boolean", "list", "object"}

// paramSpecs finds the typed params in the params mapping n (decoded as m), replaces each by
// its default in m, and returns their specs.
func (p *parser) paramSpecs(n *yaml.Node, m map[string]any) map[string]ParamSpec {
	var specs map[string]ParamSpec
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, vn := n.Content[i].Value, resolve(n.Content[i+1])
		obj, ok := m[name].(map[string]any)
		if !ok || vn.Kind != yaml.MappingNode || !isParamSpec(obj) {
			continue
		}
		path := join("params", name)
		spec := ParamSpec{}
		def := obj["default"]
		spec.Type, _ = obj["type"].(string)
		spec.Description, _ = obj["description"].(string)
		if spec.Type == "" {
			spec.Type = JSONKind(def)
		} else if !contains(paramTypes, spec.Type) {
			p.add(vn.Line, join(path, "type"), fmt.Sprintf("param type %s is not one of %s", quoteShort(spec.Type), strings.Join(paramTypes, ", ")), "write type: string")
		}
		if e, has := obj["enum"]; has {
			list, ok := e.([]any)
			if !ok || len(list) == 0 {
				p.add(vn.Line, join(path, "enum"), "enum must be a non-empty list of the allowed values", "write enum: [kr, jp]")
			}
			spec.Enum = list
		}
		if pat, has := obj["pattern"]; has {
			s, ok := pat.(string)
			if _, err := regexp.Compile(s); !ok || err != nil {
				p.add(vn.Line, join(path, "pattern"), fmt.Sprintf("pattern %v is not a regular expression", pat), "write pattern: '[a-z]+' (Go's RE2 syntax; it must match the whole value)")
			}
			spec.Pattern = s
		}
		m[name] = def
		if def != nil {
			if err := spec.Check(name, def); err != nil {
				p.add(vn.Line, join(path, "default"), "the default "+err.Error(), "make the default one of the values the param allows")
			}
		}
		if specs == nil {
			specs = map[string]ParamSpec{}
		}
		specs[name] = spec
	}
	return specs
}

// isParamSpec says whether a param's mapping is a typed param: a default and spec keys only.
func isParamSpec(obj map[string]any) bool {
	if _, ok := obj["default"]; !ok {
		return false
	}
	for k := range obj {
		if !contains(paramSpecKeys, k) {
			return false
		}
	}
	return true
}

// Check says why v is not a value the param allows, or nil.
func (s ParamSpec) Check(name string, v any) error {
	kind := JSONKind(v)
	switch {
	case s.Type == "integer":
		if f, ok := asFloat(v); !ok || f != float64(int64(f)) {
			return fmt.Errorf("of param %q must be a whole number, not %s", name, show(v))
		}
	case s.Type != "" && s.Type != kind && v != nil:
		return fmt.Errorf("of param %q must be a %s, not a %s (%s)", name, s.Type, kind, show(v))
	}
	if len(s.Enum) > 0 {
		found := false
		for _, e := range s.Enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v) && JSONKind(e) == JSONKind(v)
		}
		if !found {
			return fmt.Errorf("of param %q must be one of %s, not %s", name, show(s.Enum), show(v))
		}
	}
	if s.Pattern != "" {
		str, ok := v.(string)
		re, err := regexp.Compile(`^(?:` + s.Pattern + `)$`)
		if !ok || err != nil || !re.MatchString(str) {
			return fmt.Errorf("of param %q must match %s, not %s", name, s.Pattern, show(v))
		}
	}
	return nil
}

// CheckConf checks a trigger's conf against the DAG's params: when the DAG declares params,
// every conf key must be one of them, with a value of the same JSON kind as its default, and
// a typed param's value must be of its type, in its enum and match its pattern.
func (d *DAG) CheckConf(conf map[string]any) error {
	if len(conf) == 0 || len(d.Params) == 0 {
		return nil
	}
	names := make([]string, 0, len(d.Params))
	for k := range d.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := conf[k]
		def, ok := d.Params[k]
		if !ok {
			return fmt.Errorf("conf key %q is not a param of DAG %s (params: %s)", k, d.ID, strings.Join(names, ", "))
		}
		if spec, typed := d.ParamSpecs[k]; typed {
			if err := spec.Check(k, v); err != nil {
				return fmt.Errorf("conf: the value %w", err)
			}
			continue
		}
		if def != nil && v != nil && JSONKind(def) != JSONKind(v) {
			return fmt.Errorf("conf key %q must be a %s like its default %v, got a %s", k, JSONKind(def), def, JSONKind(v))
		}
	}
	return nil
}

// JSONKind names a decoded JSON (or YAML) value's kind: string, number, boolean, list,
// object or null.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, uint64, float64, float32, int32:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func show(v any) string {
	s := fmt.Sprintf("%#v", v)
	if str, ok := v.(string); ok {
		s = quoteShort(str)
	} else if l, ok := v.([]any); ok {
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = show(e)
		}
		s = "[" + strings.Join(parts, ", ") + "]"
	} else if f, ok := asFloat(v); ok {
		s = fmt.Sprint(f)
	}
	return s
}
