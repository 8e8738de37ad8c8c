package render

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
)

func seoulRun(t *testing.T) Run {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 12, 31, 15, 5, 0, 0, time.UTC) // 2025-01-01 00:05 KST
	return Run{
		DagID: "usage", RunID: "scheduled__2024-12-31T15:05:00Z", RunType: "scheduled", TaskID: "post", TryNumber: 2,
		Loc: seoul, LogicalDate: start, IntervalStart: start, IntervalEnd: start.Add(24 * time.Hour),
		Params: map[string]any{"region": "region-asia-northeast3"}, Conf: map[string]any{"full": true},
		LogURL: "https://ui.example/dags/usage/runs/scheduled__2024-12-31T15:05:00Z/tasks/post?try=2",
	}
}

func lookups() Lookups {
	return Lookups{
		Var: func(name string) (string, bool, error) {
			if name == "slack-channel-prod" {
				return "#data-alerts", true, nil
			}
			return "", false, nil
		},
		Secret: func(name string) (string, error) {
			if name == "api-key" {
				return "s3cr3t-value", nil
			}
			return "", errors.New("secret " + name + " not found")
		},
		Conn: func(id string) (map[string]any, error) {
			return map[string]any{"host": "db.internal", "login": "etl", "password": "pw-1234", "port": 5432}, nil
		},
		XCom: func(task string) (any, error) {
			return map[string]any{"rows": []any{map[string]any{"user": "kim", "gib": 1.5}}}, nil
		},
		Duration: func(task string) (time.Duration, bool, error) {
			switch task {
			case "fetch":
				return 83*time.Second + 450*time.Millisecond, true, nil
			case "quick":
				return 1234 * time.Millisecond, true, nil
			}
			return 0, false, nil // skipped: never ran
		},
	}
}

func TestRenderUsesAirflowNamesInTheDAGsTimezone(t *testing.T) {
	r := seoulRun(t)
	cases := map[string]string{
		"{{ .ds }}":                                   "2025-01-01", // Airflow would say 2024-12-31 (UTC)
		"{{ .ds_nodash }}":                            "20250101",
		"{{ .ts }}":                                   "2025-01-01T00:05:00+09:00",
		"{{ .data_interval_end }}":                    "2025-01-02T00:05:00+09:00",
		"{{ .params.region }}":                        "region-asia-northeast3",
		"{{ .dag_run.run_id }}":                       "scheduled__2024-12-31T15:05:00Z",
		"{{ .dag_run.conf.full }}":                    "true",
		"{{ .ti.try_number }}":                        "2",
		"{{ .ti.log_url }}":                           "https://ui.example/dags/usage/runs/scheduled__2024-12-31T15:05:00Z/tasks/post?try=2",
		`{{ duration "fetch" }}`:                      "1m23s",
		`{{ duration "quick" }}`:                      "1.2s",
		`[{{ duration "skipped" }}]`:                  "[]",
		"{{ .dag.dag_id }}":                           "usage",
		`{{ var "slack-channel-prod" "#test" }}`:      "#data-alerts",
		`{{ var "other" "#test" }}`:                   "#test",
		`{{ dateAdd .ds 7 }}`:                         "2025-01-08",
		`{{ add .logical_date "1d" | ds }}`:           "2025-01-02",
		`{{ sub .logical_date "2h" }}`:                "2024-12-31T22:05:00+09:00",
		`{{ inTZ .logical_date "UTC" }}`:              "2024-12-31T15:05:00Z",
		`{{ format .logical_date "2006/01/02 15h" }}`: "2025/01/01 00h",
		`{{ (conn "warehouse").host }}:{{ (conn "warehouse").port }}`:                  "db.internal:5432",
		`{{ range (xcom "fetch").rows }}{{ .user }}={{ printf "%.2f" .gib }}{{ end }}`: "kim=1.50",
		`{{ (xcom "fetch" "rows") | len }}`:                                            "1",
		`{{ toJSON .params }}`:                                                         `{"region":"region-asia-northeast3"}`,
		`{{ (json "{\"a\": [1, 2]}").a | len }}`:                                       "2",
	}
	data, funcs := Data(r), Funcs(lookups(), r.Loc)
	for tmpl, want := range cases {
		got, err := Render(map[string]any{"x": tmpl}, data, funcs)
		if err != nil {
			t.Errorf("%s: %v", tmpl, err)
			continue
		}
		if s := got.(map[string]any)["x"]; s != want {
			t.Errorf("%s = %q; want %q", tmpl, s, want)
		}
	}
}

func TestRenderWalksNestedArgumentsAndKeepsNonTemplates(t *testing.T) {
	r := seoulRun(t)
	in := map[string]any{
		"sql":     "SELECT * FROM t WHERE d = '{{ .ds }}'",
		"labels":  map[string]any{"day": "{{ .ds_nodash }}"},
		"list":    []any{"{{ .ti.task_id }}", 3, true},
		"literal": "no templates here",
	}
	out, err := Render(in, Data(r), Funcs(lookups(), r.Loc))
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["sql"] != "SELECT * FROM t WHERE d = '2025-01-01'" || m["labels"].(map[string]any)["day"] != "20250101" ||
		m["list"].([]any)[0] != "post" || m["list"].([]any)[1] != 3 || m["literal"] != "no templates here" {
		t.Fatalf("rendered %#v", m)
	}
	if in["sql"] != "SELECT * FROM t WHERE d = '{{ .ds }}'" {
		t.Fatal("Render changed its input")
	}
}

func TestRenderErrorsNameTheArgumentAndLine(t *testing.T) {
	r := seoulRun(t)
	data, funcs := Data(r), Funcs(lookups(), r.Loc)
	cases := []struct{ tmpl, want string }{
		{"a\n{{ .nope }}", "with.x:2"},
		{"{{ .ds ", "with.x:1"},
		{`{{ var "missing" }}`, "updraft vars set missing"},
		{`{{ secret "nope" }}`, "secret nope not found"},
		{`{{ xcom "fetch" "nokey" }}`, `no key "nokey"`},
		{`{{ add .ds "soon" }}`, "not a duration"},
		{`{{ inTZ .logical_date "KST" }}`, "unknown timezone"},
	}
	for _, c := range cases {
		_, err := Render(map[string]any{"x": c.tmpl}, data, funcs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want an error with %q", c.tmpl, err, c.want)
		}
	}
}

func TestMask(t *testing.T) {
	got := Mask("token s3cr3t-value-long and s3cr3t-value and pw", []string{"s3cr3t-value", "s3cr3t-value-long", "pw"})
	if got != "token *** and *** and pw" {
		t.Fatalf("masked %q", got)
	}
}

func TestEveryFunctionTheValidatorAcceptsIsDefined(t *testing.T) {
	funcs := Funcs(Lookups{}, nil)
	for _, name := range dag.TemplateFuncs {
		if _, ok := funcs[name]; !ok {
			t.Errorf("dag.TemplateFuncs has %q but render does not define it", name)
		}
	}
	// Besides those, render replaces the comparison builtins with number-friendly ones.
	if n := len(dag.TemplateFuncs) + len(comparisons); len(funcs) != n {
		t.Errorf("render defines %d functions, the validator knows %d", len(funcs), n)
	}
}

var comparisons = []string{"eq", "ne", "lt", "le", "gt", "ge"}

func TestComparisonsTakeNumbersOfAnyKind(t *testing.T) {
	funcs := Funcs(Lookups{}, nil)
	data := map[string]any{"n": Numbers(float64(3)), "zero": Numbers(float64(0)), "s": "b"}
	cases := map[string]string{
		`{{ gt .n 0 }}`:              "true",
		`{{ gt .zero 0 }}`:           "false",
		`{{ eq .n 3 }}`:              "true",
		`{{ eq .n 1 2 3 }}`:          "true",
		`{{ ne .n 3 }}`:              "false",
		`{{ le .n 3.5 }}`:            "true",
		`{{ lt .s "c" }}`:            "true",
		`{{ eq .s "b" }}`:            "true",
		`{{ eq .s "3" }}`:            "false",
		`{{ if ge .n 3 }}y{{ end }}`: "y",
	}
	for tmpl, want := range cases {
		got, err := Render(tmpl, data, funcs)
		if err != nil || got != want {
			t.Errorf("%s = %v (%v); want %s", tmpl, got, err, want)
		}
	}
	if _, err := Render(`{{ gt .s 1 }}`, data, funcs); err == nil || !strings.Contains(err.Error(), "can't order") {
		t.Errorf("ordering a string and a number: %v; want a clear error", err)
	}
}

func TestNumbersFromXComPrintAsWritten(t *testing.T) {
	v := Numbers(map[string]any{"id": float64(1740960000), "amount": 12.5, "gib": float64(2)})
	data := map[string]any{"o": v}
	cases := map[string]string{
		"{{ .o.id }}":                     "1740960000",
		"{{ .o.amount }}":                 "12.5",
		`{{ printf "%.2f" .o.gib }}`:      "2.00",
		`{{ printf "%d" .o.id }}`:         "1740960000",
		`{{ printf "%08.3f" .o.amount }}`: "0012.500",
		`{{ toJSON .o }}`:                 `{"amount":12.5,"gib":2,"id":1740960000}`,
	}
	for tmpl, want := range cases {
		got, err := Render(tmpl, data, Funcs(Lookups{}, nil))
		if err != nil || got != want {
			t.Errorf("%s = %q (%v); want %q", tmpl, got, err, want)
		}
	}
}
