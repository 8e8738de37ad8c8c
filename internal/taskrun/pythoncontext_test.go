package taskrun

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// TestPythonContextHasTheLogURL: a python task's context carries ti.log_url, the UI page of
// its try, from UPDRAFT_UI_URL; empty when the UI's address is unknown.
func TestPythonContextHasTheLogURL(t *testing.T) {
	tc := &Context{
		Ref: scheduler.AttemptRef{DagID: "etl", RunID: "manual__2025-01-01T00:00:00Z", TaskID: "build", TryNumber: 2},
		DAG: &dag.DAG{ID: "etl"},
		Run: scheduler.Run{DagID: "etl", RunID: "manual__2025-01-01T00:00:00Z", LogicalDate: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		Getenv: func(k string) string {
			if k == "UPDRAFT_UI_URL" {
				return "https://ui.example/"
			}
			return ""
		},
	}
	ti := pythonContext(tc)["ti"].(map[string]any)
	if got, want := ti["log_url"], "https://ui.example/dags/etl/runs/manual__2025-01-01T00:00:00Z/tasks/build?try=2"; got != want {
		t.Errorf("ti.log_url = %v, want %s", got, want)
	}
	tc.Getenv = func(string) string { return "" }
	if got := pythonContext(tc)["ti"].(map[string]any)["log_url"]; got != "" {
		t.Errorf("without UPDRAFT_UI_URL, ti.log_url = %v, want empty", got)
	}
}

// TestPythonContextHasMaxTries: a python task's context["ti"]["max_tries"] is the task's last
// try, as `.ti.max_tries` in templates (it was 0), and try_number its try.
func TestPythonContextHasMaxTries(t *testing.T) {
	tc := &Context{
		Ref:      scheduler.AttemptRef{DagID: "etl", RunID: "r1", TaskID: "build", TryNumber: 2},
		DAG:      &dag.DAG{ID: "etl"},
		Run:      scheduler.Run{DagID: "etl", RunID: "r1"},
		MaxTries: 4,
	}
	ti := pythonContext(tc)["ti"].(map[string]any)
	if ti["max_tries"] != 4.0 || ti["try_number"] != 2.0 { // JSON numbers, as Python gets them
		t.Errorf("ti.max_tries = %v, ti.try_number = %v; want 4 and 2", ti["max_tries"], ti["try_number"])
	}
}

// TestPluginContextCarriesTheAttempt: a go task's function gets its DAG, task and try in the
// plug-in API's public types.
func TestPluginContextCarriesTheAttempt(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	tc := &Context{
		Ref:      scheduler.AttemptRef{DagID: "etl", RunID: "r1", TaskID: "build", TryNumber: 2, AttemptID: "a9"},
		DAG:      &dag.DAG{ID: "etl", Owner: "data@example.com", Params: map[string]any{"limit": 5}, Timezone: "Asia/Seoul"},
		Task:     &dag.Task{ID: "build", Retries: 3, Timeout: time.Minute},
		MaxTries: 4,
		Args:     map[string]any{"func": "f"},
	}
	p := pluginContext(tc)
	if p.DAG.ID != "etl" || p.DAG.Owner != "data@example.com" || p.DAG.Params["limit"] != 5 || p.DAG.Location().String() != seoul.String() {
		t.Errorf("DAG %+v", p.DAG)
	}
	if p.Task.ID != "build" || p.Task.Retries != 3 || p.Task.MaxTries != 4 || p.Task.Timeout != time.Minute {
		t.Errorf("Task %+v", p.Task)
	}
	if p.Ref.AttemptID != "a9" || p.Args["func"] != "f" {
		t.Errorf("Ref %+v Args %v", p.Ref, p.Args)
	}
}

// TestPythonFunctionSeesMaxTries: the Python function itself reads context["ti"]["max_tries"]
// as the task's last try (through the runner, not only the Go side's map).
func TestPythonFunctionSeesMaxTries(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatalf("python3 is needed for the python type's tests: %v", err)
	}
	root := t.TempDir()
	src := "def main(context):\n    return {'max_tries': context['ti']['max_tries'], 'try_number': context['ti']['try_number']}\n"
	if err := os.WriteFile(filepath.Join(root, "tries.py"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := scheduler.AttemptRef{DagID: "etl", RunID: "r1", TaskID: "build", TryNumber: 2, AttemptID: "a1"}
	log, err := tasks.NewLogger(io.Discard, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	tc := &Context{
		Ref: ref, DAG: &dag.DAG{ID: "etl"}, Task: &dag.Task{ID: "build", Type: "python", Retries: 2},
		Run: scheduler.Run{DagID: "etl", RunID: "r1"}, MaxTries: 3, Log: log, Bundle: root,
		Args: map[string]any{"file": "tries.py", "function": "main"}, Getenv: func(string) string { return "" }, Now: time.Now,
	}
	res := Python().Run(context.Background(), tc)
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `{"max_tries": 3, "try_number": 2}` && string(res.XCom) != `{"max_tries":3,"try_number":2}` {
		t.Fatalf("python: %s %q XCom %s; want max_tries 3, try_number 2", res.State, res.Error, res.XCom)
	}
}
