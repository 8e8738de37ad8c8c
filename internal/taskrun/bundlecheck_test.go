package taskrun_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
)

func TestValidationFindsMissingBundleFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"lib/helpers.py":  "import json\n\ndef build(n):\n    return n\n",
		"scripts/ok.sh":   "echo ok\n",
		"sql/present.sql": "SELECT 1",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `id: checked
owner: owner@example.com
tasks:
  - id: good
    type: python
    with: {callable: lib.helpers:build, kwargs: {n: 1}}
  - id: no_module
    type: python
    with: {callable: lib.nothere:build}
  - id: no_function
    type: python
    with:
      callable: lib.helpers:load
  - id: no_file
    type: python
    with: {file: scripts/gone.py, function: main}
  - id: query
    type: bigquery.query
    with:
      sql_file: sql/absent.sql
  - id: included
    type: shell
    with:
      command: ./scripts/ok.sh && ./scripts/missing.sh
      env:
        SQL: '{{ include "sql/present.sql" }} {{ include "sql/gone.sql" }}'
`
	file := filepath.Join(dir, "checked.yaml")
	_, err := dag.Parse(file, []byte(src), dag.Options{CheckArgs: tasktypes.Builtins().CheckArgs, CheckFiles: taskrun.CheckBundleFiles(dir, "python3")})
	var ps dag.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v; want problems", err)
	}
	got := ps.Error()
	for _, want := range []string{
		file + ":9: tasks[1].with.callable: module lib.nothere: lib/nothere.py is not in the bundle",
		file + ":13: tasks[2].with.callable: lib/helpers.py defines no function load",
		file + ":16: tasks[3].with.file: file scripts/gone.py is not in the bundle",
		file + ":20: tasks[4].with.sql_file: sql_file sql/absent.sql is not in the bundle",
		file + ":24: tasks[5].with.command: script ./scripts/missing.sh is not in the bundle",
		"include sql/gone.sql is not in the bundle",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if n := len(ps); n != 6 {
		t.Errorf("%d problems; want 6 (the good task and the present files are fine):\n%s", n, got)
	}
}

func TestPythonArgumentChecks(t *testing.T) {
	t.Parallel()
	check := tasktypes.Builtins().CheckArgs
	for _, c := range []struct {
		with map[string]any
		want string
	}{
		{map[string]any{}, "needs with.callable"},
		{map[string]any{"callable": "pipelines.orders"}, "is not module.path:function"},
		{map[string]any{"callable": "a:b", "file": "x.py"}, "not both"},
		{map[string]any{"file": "x.py"}, "file needs function"},
		{map[string]any{"file": "../outside.py", "function": "f"}, "inside the bundle"},
		{map[string]any{"callable": "a:b", "kwargs": "x"}, "kwargs must be a mapping"},
		{map[string]any{"callable": "a:b", "nope": 1}, "nope"},
	} {
		ps := check("python", c.with)
		var msgs []string
		for _, p := range ps {
			msgs = append(msgs, p.Arg+": "+p.Msg)
		}
		if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
			t.Errorf("%v: problems %q; want %q", c.with, msgs, c.want)
		}
	}
	if ps := check("python", map[string]any{"callable": "pipelines.orders:load", "kwargs": map[string]any{"a": 1}}); len(ps) != 0 {
		t.Errorf("a good python task has problems: %v", ps)
	}
	if ps := check("bigquery.query", map[string]any{"sql_file": "sql/q.sql"}); len(ps) != 0 {
		t.Errorf("sql_file instead of sql: %v", ps)
	}
	if ps := check("bigquery.query", map[string]any{"sql_file": "sql/q.sql", "sql": "SELECT 1"}); len(ps) != 1 {
		t.Errorf("sql and sql_file both: %v; want one problem", ps)
	}
}
