package tasks

import (
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
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
