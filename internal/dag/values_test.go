package dag

import (
	"strings"
	"testing"
)

// TestValuesAreData lists what a shell command and SQL may and may not paste.
func TestValuesAreData(t *testing.T) {
	t.Parallel()
	shell := func(cmd string) string {
		return doc("params: {x: a, list: [a]}", "tasks:", "  - id: up", "    type: noop",
			"  - id: t", "    type: shell", "    needs: [up]", "    with:", "      command: '"+cmd+"'")
	}
	sql := func(q string) string {
		return doc("params: {x: a}", "tasks:", "  - id: up", "    type: noop",
			"  - id: t", "    type: bigquery.query", "    needs: [up]", "    for_each: [a]", "    with:", "      sql: '"+q+"'")
	}
	refused := map[string]string{
		"param":              shell(`echo {{ .params.x }}`),
		"conf":               shell(`echo {{ .dag_run.conf.x }}`),
		"whole dag_run":      shell(`echo {{ .dag_run }}`),
		"root":               shell(`echo {{ . }}`),
		"root variable":      shell(`echo {{ $.params.x }}`),
		"xcom":               shell(`echo {{ xcom "up" }}`),
		"xcom field":         shell(`echo {{ (xcom "up").rows }}`),
		"var":                shell(`echo {{ var "v" "d" }}`),
		"conn":               shell(`echo {{ (conn "c").host }}`),
		"printf of a param":  shell(`echo {{ printf "%s-x" .params.x }}`),
		"piped":              shell(`echo {{ .params.x | printf "%s" }}`),
		"or":                 shell(`echo {{ or .params.x "d" }}`),
		"range":              shell(`{{ range .params.list }}echo {{ . }};{{ end }}`),
		"range variable":     shell(`{{ range $i, $v := .params.list }}echo {{ $v }};{{ end }}`),
		"with":               shell(`{{ with .params.x }}echo {{ . }}{{ end }}`),
		"variable":           shell(`{{ $y := .params.x }}echo {{ $y }}`),
		"assigned variable":  shell(`{{ $y := "a" }}{{ $y = .params.x }}echo {{ $y }}`),
		"bqIdent in a shell": shell(`echo {{ bqIdent .params.x }}`),
		"sql param":          sql(`SELECT {{ .params.x }}`),
		"sql item":           sql(`SELECT * FROM t WHERE s = "{{ .item }}"`),
		"shq in sql":         sql(`SELECT {{ shq .params.x }}`),
	}
	for name, src := range refused {
		_, err := Parse("x.yaml", []byte(src), Options{})
		if err == nil || !strings.Contains(err.Error(), "pastes a value") || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("%s: %v; want the values-are-data problem", name, err)
		}
	}
	allowed := map[string]string{
		"dates":                shell(`echo {{ .ds }} {{ .ts }} {{ .ds_nodash }} {{ .logical_date }} {{ .data_interval_end }}`),
		"ids":                  shell(`echo {{ .ti.task_id }} {{ .dag.dag_id }} {{ .dag_run.run_id }} {{ .run_id }}`),
		"env form":             shell(`echo "$X"`),
		"shq":                  shell(`echo {{ shq .params.x }} {{ .params.x | shq }} {{ shq (xcom "up") }}`),
		"date functions":       shell(`echo {{ dateAdd .ds 1 }} {{ add .logical_date "1d" }}`),
		"conditions":           shell(`{{ if eq .params.x "a" }}echo a{{ else }}echo b{{ end }}`),
		"len":                  shell(`echo {{ len .params.list }}`),
		"secret":               shell(`psql "postgres://etl:{{ secret "db" }}@db/x"`),
		"range over a literal": shell(`{{ range $v := slice "abc" 1 }}echo {{ $v }}{{ end }}`),
		"bqIdent":              sql(`SELECT * FROM {{ bqIdent .params.x }} WHERE s = @s`),
		"sql dates":            sql(`SELECT * FROM d.events_{{ .ds_nodash }}`),
	}
	for name, src := range allowed {
		if _, err := Parse("x.yaml", []byte(src), Options{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestValuesProblemSaysWhereAndHow: file:line of the action inside a block scalar, and a
// hint that parses as the fixed DAG.
func TestValuesProblemSaysWhereAndHow(t *testing.T) {
	t.Parallel()
	src := doc("params: {source_day: \"\"}", "tasks:", "  - id: t", "    type: shell", "    with:",
		"      command: |", "        set -e", "        echo {{ .params.source_day }}")
	_, err := Parse("x.yaml", []byte(src), Options{})
	ps, ok := err.(Problems)
	if !ok || len(ps) != 1 {
		t.Fatalf("%v", err)
	}
	p := ps[0]
	if p.Line != strings.Count(src[:strings.Index(src, "echo {{")], "\n")+1 || p.Field != "tasks[0].with.command" {
		t.Errorf("at %d %s; want the echo line", p.Line, p.Field)
	}
	if !strings.Contains(p.Hint, `env: {SOURCE_DAY: '{{ .params.source_day }}'}`) || !strings.Contains(p.Hint, `"$SOURCE_DAY"`) ||
		!strings.Contains(p.Hint, "{{ shq .params.source_day }}") {
		t.Errorf("hint %q", p.Hint)
	}
}

// TestTypedParams: a param with a spec keeps its default as the value and checks a conf.
func TestTypedParams(t *testing.T) {
	t.Parallel()
	src := doc(`params:`,
		`  region: {default: kr, enum: [kr, jp]}`,
		`  day: {default: "", pattern: '(\d{4}-\d{2}-\d{2})?'}`,
		`  limit: {default: 10, type: integer}`,
		`  plain: {a: 1}`,
		"tasks: [{id: t, type: noop}]")
	d, err := Parse("x.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Params["region"] != "kr" || d.Params["day"] != "" || len(d.ParamSpecs) != 3 {
		t.Fatalf("params %v specs %v", d.Params, d.ParamSpecs)
	}
	if _, ok := d.Params["plain"].(map[string]any); !ok {
		t.Fatalf("a mapping without default is a plain object param: %v", d.Params["plain"])
	}
	for _, good := range []map[string]any{
		{"region": "jp"}, {"day": "2025-01-31"}, {"day": ""}, {"limit": float64(5)}, {"plain": map[string]any{}},
	} {
		if err := d.CheckConf(good); err != nil {
			t.Errorf("CheckConf(%v): %v", good, err)
		}
	}
	for _, bad := range []map[string]any{
		{"region": "us"}, {"region": "kr; touch x"}, {"day": "2025-01-31; touch x"}, {"day": "$(id)"},
		{"day": "2025-01-31\n"}, {"limit": 1.5}, {"limit": "5"}, {"plain": "x"}, {"other": 1},
	} {
		if err := d.CheckConf(bad); err == nil {
			t.Errorf("CheckConf(%v) accepted", bad)
		}
	}
	for name, src := range map[string]string{
		"default outside enum": doc("params: {r: {default: us, enum: [kr, jp]}}", "tasks: [{id: t, type: noop}]"),
		"bad pattern":          doc("params: {r: {default: a, pattern: '('}}", "tasks: [{id: t, type: noop}]"),
		"bad type":             doc("params: {r: {default: a, type: text}}", "tasks: [{id: t, type: noop}]"),
	} {
		if _, err := Parse("x.yaml", []byte(src), Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
