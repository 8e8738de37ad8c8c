package cli

import (
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/tasks"
)

// TestValidateNotesAnUncheckedPythonFunction: without an interpreter, validation says that
// python tasks' functions went unchecked, and says nothing when there is one or no python task.
func TestValidateNotesAnUncheckedPythonFunction(t *testing.T) {
	withPython := []*dag.DAG{{ID: "p", Tasks: []dag.Task{{ID: "a", Type: "python"}}}}
	noPython := []*dag.DAG{{ID: "s", Tasks: []dag.Task{{ID: "a", Type: "shell"}}}}
	t.Setenv(tasks.EnvPython, "/nonexistent/python3")
	if got := pythonNote(withPython); !strings.Contains(got, "were not checked") || !strings.Contains(got, tasks.EnvPython) {
		t.Fatalf("no interpreter: note %q; want one saying the functions were not checked, naming %s", got, tasks.EnvPython)
	}
	if got := pythonNote(noPython); got != "" {
		t.Fatalf("no python task: note %q; want none", got)
	}
	t.Setenv(tasks.EnvPython, "sh") // any interpreter found on PATH
	if got := pythonNote(withPython); got != "" {
		t.Fatalf("an interpreter there: note %q; want none", got)
	}
}
