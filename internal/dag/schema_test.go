package dag

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestSchemaMatchesParser keeps docs/dag-schema.json in step with the parser's field lists.
func TestSchemaMatchesParser(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/dag-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("docs/dag-schema.json is not valid JSON: %v", err)
	}
	if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", schema["$schema"])
	}
	// at walks a path of object keys.
	at := func(path ...string) any {
		var v any = schema
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("schema path %v: %q is not an object", path, k)
			}
			v = m[k]
		}
		return v
	}
	keys := func(path ...string) []string {
		m, ok := at(path...).(map[string]any)
		if !ok {
			t.Fatalf("schema path %v is not an object", path)
		}
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	strs := func(path ...string) []string {
		l, ok := at(path...).([]any)
		if !ok {
			t.Fatalf("schema path %v is not a list", path)
		}
		var out []string
		for _, v := range l {
			out = append(out, v.(string))
		}
		return out
	}
	sorted := func(l []string) []string {
		l = slices.Clone(l)
		slices.Sort(l)
		return l
	}
	same := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema has %v, parser has %v", what, got, want)
		}
	}
	same("top-level properties", keys("properties"), sorted(dagFields))
	same("task properties", keys("$defs", "task", "properties"), sorted(taskFields))
	same("defaults properties", keys("$defs", "defaults", "properties"), sorted(defaultsFields))
	same("alerts properties", keys("$defs", "alerts", "properties"), sorted(alertsFields))
	same("alerts.slack properties", keys("$defs", "alerts", "properties", "slack", "properties"), sorted(slackFields))
	same("shell with properties", keys("$defs", "shellWith", "properties"), sorted(shellWithFields))
	same("alert events", strs("$defs", "alerts", "properties", "slack", "properties", "on", "items", "enum"), alertEvents)
	same("trigger rules", strs("$defs", "triggerRule", "enum"), triggerRules)
	same("task types", strs("$defs", "task", "properties", "type", "enum"), BuiltinTaskTypes)
	same("required top-level", strs("required"), []string{"id", "owner", "tasks"})
	same("required task fields", strs("$defs", "task", "required"), []string{"id", "type"})
}
