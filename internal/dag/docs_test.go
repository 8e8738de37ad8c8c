package dag

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestDocsListEveryField keeps docs/dags.md, the DAG file reference, in step with the parser
// and docs/dag-schema.json: every field either knows, every trigger rule, alert event and
// task type, every template value (and field of .ti, .dag_run, .dag) and function, must be
// named on the page (in backticks).
func TestDocsListEveryField(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../docs/dags.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(page)
	missing := map[string][]string{}
	need := func(what string, names ...string) {
		for _, n := range names {
			if !strings.Contains(doc, "`"+n+"`") && !strings.Contains(doc, "`."+n+"`") && !strings.Contains(doc, "`"+n+" ") {
				missing[what] = append(missing[what], n)
			}
		}
	}
	need("DAG fields", dagFields...)
	need("task fields", taskFields...)
	need("defaults fields", defaultsFields...)
	need("alerts fields", alertsFields...)
	need("alerts.slack fields", slackFields...)
	need("alert events", alertEvents...)
	need("shell arguments", shellWithFields...)
	need("trigger rules", triggerRules...)
	need("task types", BuiltinTaskTypes...)
	need("template values", TemplateContext...)
	need("template functions", TemplateFuncs...)
	for name, fields := range templateContextFields {
		need("fields of ."+name, fields...)
	}

	data, err := os.ReadFile("../../docs/dag-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("docs/dag-schema.json: %v", err)
	}
	var props []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if p, ok := v["properties"].(map[string]any); ok {
				for k := range p {
					props = append(props, k)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(schema)
	sort.Strings(props)
	need("schema properties", props...)
	for what, names := range missing {
		t.Errorf("docs/dags.md does not name these %s: %s", what, strings.Join(names, ", "))
	}
}
