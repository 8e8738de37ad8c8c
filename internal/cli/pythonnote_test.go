package cli

import (
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun"
)

// TestValidateNotesAnUncheckedPythonFunction: without an interpreter, validation says that
// python tasks' functions went unchecked, and says nothing when there is one or no python task.
func TestValidateNotesAnUncheckedPythonFunction(t *testing.T) {
	withPython := []*dag.DAG{{ID: "p", Tasks: []dag.Task{{ID: "a", Type: "python"}}}}
	noPython := []*dag.DAG{{ID: "s", Tasks: []dag.Task{{ID: "a", Type: "shell"}}}}
	t.Setenv(taskrun.EnvPython, "/nonexistent/python3")
	if got := pythonNote(withPython); !strings.Contains(got, "were not checked") || !strings.Contains(got, taskrun.EnvPython) {
		t.Fatalf("no interpreter: note %q; want one saying the functions were not checked, naming %s", got, taskrun.EnvPython)
	}
	if got := pythonNote(noPython); got != "" {
		t.Fatalf("no python task: note %q; want none", got)
	}
	t.Setenv(taskrun.EnvPython, "sh") // any interpreter found on PATH
	if got := pythonNote(withPython); got != "" {
		t.Fatalf("an interpreter there: note %q; want none", got)
	}
}
