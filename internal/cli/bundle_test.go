package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `updraft test` runs the DAG's folder in place: an edit to its Python shows at the next
// test, with no deploy step.
func TestUpdraftTestUsesTheFolderInPlace(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("team.yaml", `id: team
owner: owner@example.com
tasks:
  - {id: compute, type: python, with: {callable: lib.helpers:compute, kwargs: {n: 2}}}
  - {id: show, type: shell, needs: [compute], with: {command: echo "$V", env: {V: '{{ xcom "compute" "doubled" }}'}}}
`)
	write("lib/helpers.py", "def compute(n, context):\n    return {'doubled': n * 2}\n")
	env := map[string]string{"UPDRAFT_WORKER_CMD": workerCmd}
	out, errOut, code := run(t, env, "test", filepath.Join(dir, "team.yaml"))
	if code != 0 || !strings.Contains(out, "run manual__") {
		t.Fatalf("first test: exit %d\n%s\n%s", code, out, errOut)
	}
	write("lib/helpers.py", "def compute(n, context):\n    raise ValueError('edited: n=%d' % n)\n")
	out, errOut, code = run(t, env, "test", filepath.Join(dir, "team.yaml"))
	if code != 1 || !strings.Contains(out, "ValueError: edited: n=2") {
		t.Fatalf("after the edit: exit %d; want the edited function's error\n%s\n%s", code, out, errOut)
	}
}
