package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/gcs"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// writeBundle writes a team's DAG folder.
func writeBundle(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

const bundledDAG = `id: bundled
owner: owner@example.com
params: {region: kr}
tasks:
  - id: build
    type: python
    with:
      callable: lib.helpers:build
      kwargs: {n: 3, label: "{{ .params.region }}", rows: '{{ xcom "rows" }}'}
    needs: [rows]
  - id: rows
    type: shell
    with: {command: 'echo ''[{"a": 1}, {"a": 2}]'''}
  - id: step
    type: shell
    needs: [build]
    with:
      command: ./scripts/step.sh
      env: {MSG: '{{ xcom "build" "message" }}'}
  - id: query
    type: bigquery.query
    needs: [build]
    with:
      sql_file: sql/q.sql
      params: {n: 21}
`

func helpersPy(version string) string {
	return `import logging

def build(n, label, rows, context):
    logging.getLogger("helpers").info("building from %d rows", len(rows))
    print("first line of build")
    return {"message": "` + version + ` %s x%d rows %d try %d ds %s" % (label, n, len(rows), context["ti"]["try_number"], context["ds"]),
            "n": n, "bundle": context["bundle"]["hash"]}
`
}

// parseBundled parses a DAG of a folder and pins it to the folder in place, as `updraft test`
// and `updraft dev` do.
func parseBundled(t *testing.T, dir, file string) (*dag.DAG, []byte) {
	t.Helper()
	path := filepath.Join(dir, file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dag.Parse(path, src, dag.Options{CheckArgs: tasktypes.Builtins().CheckArgs, CheckFiles: taskrun.CheckBundleFiles(dir, "python3")})
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Pin(d, dir, ""); err != nil {
		t.Fatal(err)
	}
	return d, src
}

func xcomString(t *testing.T, s *stackBundle, r *scheduler.Run, task string) string {
	t.Helper()
	raw, err := s.stack.Engine.XCom(s.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestBundleInPlacePythonScriptAndSQLFile(t *testing.T) {
	t.Setenv(bundle.EnvCache, t.TempDir())
	s := startStack(t, time.Minute)
	bigQuery(t, s)
	dir := t.TempDir()
	writeBundle(t, dir, map[string]string{
		"pipeline.yaml":   bundledDAG,
		"lib/helpers.py":  helpersPy("v1"),
		"scripts/step.sh": "#!/bin/sh\necho \"step got: $MSG in $(basename \"$PWD\") bundle $UPDRAFT_BUNDLE_HASH\"\n",
		"sql/q.sql":       "SELECT @n * 2 AS doubled -- {{ .ds }}\n",
	})
	d, src := parseBundled(t, dir, "pipeline.yaml")
	if _, err := s.stack.Engine.Deploy(s.ctx, d, src); err != nil {
		t.Fatal(err)
	}
	run := func(day int) *scheduler.Run {
		r, err := s.stack.Engine.Trigger(s.ctx, "bundled", nil, time.Date(2025, 3, day, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.waitRun(t, r); got != scheduler.RunSuccess {
			t.Fatalf("run %s: %v", got, s.states(t, r))
		}
		return r
	}
	r := run(1)
	if got, want := xcomString(t, s, r, "step"), `"step got: v1 kr x3 rows 2 try 1 ds 2025-03-01 in `+filepath.Base(dir)+` bundle local"`; got != want {
		t.Errorf("the script's XCom is %s; want %s (python's XCom through a template, the script run from the DAG's folder)", got, want)
	}
	if got := xcomString(t, s, r, "query"); !strings.Contains(got, "42") {
		t.Errorf("the query from sql/q.sql returned %s; want doubled 42", got)
	}
	log, err := os.ReadFile(tasks.LogPath(s.logDir, scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: "build", TryNumber: 1, AttemptID: mustTI(t, s, r, "build").AttemptID}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "first line of build") || !strings.Contains(string(log), "building from 2 rows") {
		t.Errorf("print and logging are not in the task log:\n%s", log)
	}

	// An edit shows at the next run, with no deploy.
	writeBundle(t, dir, map[string]string{"lib/helpers.py": helpersPy("v2")})
	r = run(2)
	if got := xcomString(t, s, r, "step"); !strings.Contains(got, "v2 kr") {
		t.Errorf("after editing helpers.py the script got %s; want v2", got)
	}
}

const pinnedDAG = `id: pinned
owner: owner@example.com
tasks:
  - id: first
    type: python
    with: {callable: lib.helpers:hold, kwargs: {gate: "{{ .params.gate }}"}}
  - id: second
    type: python
    needs: [first]
    with: {callable: lib.helpers:hold, kwargs: {gate: ""}}
params: {gate: ""}
`

func holdPy(version string) string {
	return `import os, time

def hold(gate, context):
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    return "` + version + ` " + context["bundle"]["hash"]
`
}

func TestDeployMidRunKeepsTheRunsBundle(t *testing.T) {
	t.Setenv(bundle.EnvCache, t.TempDir())
	s := startStack(t, time.Minute)
	dir := t.TempDir()
	writeBundle(t, dir, map[string]string{"dags/pinned.yaml": pinnedDAG, "lib/helpers.py": holdPy("v1")})
	deploy := func() string {
		out, errOut, code := s.cli("dags", "deploy", dir)
		if code != 0 {
			t.Fatalf("deploy: %s %s", out, errOut)
		}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "bundle" {
				return strings.TrimSuffix(f[1], ":")
			}
		}
		t.Fatalf("deploy printed no bundle: %s", out)
		return ""
	}
	old := deploy()
	gate := filepath.Join(t.TempDir(), "gate")
	r, err := s.stack.Engine.Trigger(s.ctx, "pinned", map[string]any{"gate": gate}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "first to run", func() bool { return s.states(t, r)["first"] == scheduler.TaskRunning })
	writeBundle(t, dir, map[string]string{"lib/helpers.py": holdPy("v2")})
	if now := deploy(); now == old {
		t.Fatalf("editing helpers.py kept the bundle hash %s", now)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s", got)
	}
	for _, task := range []string{"first", "second"} {
		if got, want := xcomString(t, s, r, task), `"v1 `+old+`"`; got != want {
			t.Errorf("%s reports %s; want the run's own bundle %s", task, got, want)
		}
	}
	if out, errOut, code := s.cli("runs", "show", "pinned/"+r.RunID); code != 0 || !strings.Contains(out, "bundle "+old) {
		t.Errorf("runs show does not name the run's bundle %s: %s %s", old, out, errOut)
	}
	r2, err := s.stack.Engine.Trigger(s.ctx, "pinned", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.waitRun(t, r2)
	if got := xcomString(t, s, r2, "second"); !strings.HasPrefix(got, `"v2 `) {
		t.Errorf("a run after the deploy reports %s; want v2", got)
	}
}

func TestTamperedBundleIsRefused(t *testing.T) {
	t.Setenv(bundle.EnvCache, t.TempDir())
	s := startStack(t, time.Minute)
	dir := t.TempDir()
	writeBundle(t, dir, map[string]string{"dags/pinned.yaml": pinnedDAG, "lib/helpers.py": holdPy("v1")})
	if out, errOut, code := s.cli("dags", "deploy", dir); code != 0 {
		t.Fatalf("deploy: %s %s", out, errOut)
	}
	v, err := s.stack.Engine.Spec(s.ctx, "pinned", mustDAG(t, s, "pinned"))
	if err != nil || v.Bundle == nil || v.Bundle.Hash == "" {
		t.Fatalf("the deployed version pins no stored bundle: %+v %v", v, err)
	}
	evil := t.TempDir()
	writeBundle(t, evil, map[string]string{"lib/helpers.py": "def hold(gate, context):\n    return 'evil'\n"})
	eb, err := bundle.Build(evil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := gcsbundles.Open(context.Background(), gcs.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.PutRaw(context.Background(), v.Bundle.Hash, eb.Archive); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "pinned", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRunAllowFailure(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed", got)
	}
	if ti := mustTI(t, s, r, "first"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "do not match their hash") {
		t.Errorf("first: %s %q; want failed, refusing the bundle by its hash", ti.State, ti.Error)
	}
}

const failingDAG = `id: failing
owner: owner@example.com
tasks:
  - {id: boom, type: python, with: {callable: lib.helpers:boom}}
  - {id: skipper, type: python, with: {callable: lib.helpers:skipper}}
  - {id: exits, type: python, with: {file: scripts/exits.py, function: main}}
`

func TestPythonExceptionsAndSkips(t *testing.T) {
	t.Setenv(bundle.EnvCache, t.TempDir())
	s := startStack(t, time.Minute)
	dir := t.TempDir()
	writeBundle(t, dir, map[string]string{
		"failing.yaml": failingDAG,
		"lib/helpers.py": `from updraft import Skip

def parse(x):
    return int(x)

def boom():
    return parse("not a number")

def skipper():
    raise Skip("no rows today")
`,
		"scripts/exits.py": "import sys\n\ndef main():\n    sys.exit(99)\n",
	})
	d, src := parseBundled(t, dir, "failing.yaml")
	if _, err := s.stack.Engine.Deploy(s.ctx, d, src); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "failing", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.waitRunAllowFailure(t, r)
	boom := mustTI(t, s, r, "boom")
	for _, want := range []string{"ValueError: invalid literal for int()", "Traceback", "helpers.py\", line 4, in parse", "in boom"} {
		if !strings.Contains(boom.Error, want) {
			t.Errorf("boom's error lacks %q:\n%s", want, boom.Error)
		}
	}
	if st := s.states(t, r); st["skipper"] != scheduler.TaskSkipped || st["exits"] != scheduler.TaskSkipped || st["boom"] != scheduler.TaskFailed {
		t.Errorf("states %v; want boom failed, skipper and exits skipped", st)
	}
}

// waitRunAllowFailure waits for a run to finish, failed or not.
func (s *stackBundle) waitRunAllowFailure(t *testing.T, r *scheduler.Run) scheduler.RunState {
	t.Helper()
	var state scheduler.RunState
	s.until(t, "the run to finish", func() bool {
		v, err := s.stack.Store.GetRun(s.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		state = v.Rec.State
		return state.Finished()
	})
	return state
}

func mustDAG(t *testing.T, s *stackBundle, id string) string {
	t.Helper()
	v, err := s.stack.Store.GetDAG(s.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Rec.Version
}

// The examples as a team's repository: a python task formatting query rows with a helper
// module shared by two DAGs, a repository script, and (in TestExamplePipelinesOnBigQuery) the
// MERGE from a .sql file.
func TestExampleTeamRepo(t *testing.T) {
	t.Setenv(bundle.EnvCache, t.TempDir())
	s := startStack(t, time.Minute)
	bigQuery(t, s)
	s.deployExamples(t)
	sm, err := secrets.Open(s.ctx, s.stack.Project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.Set(s.ctx, "updraft-connections-slack", `{"conn_type": "slack", "password": "`+"xox"+`b-examples-fake"}`); err != nil {
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	run := func(dagID string, at time.Time) *scheduler.Run {
		t.Helper()
		r, err := s.stack.Engine.Trigger(s.ctx, dagID, nil, at)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.waitRun(t, r); got != scheduler.RunSuccess {
			t.Fatalf("%s: run %s %v", dagID, got, s.states(t, r))
		}
		return r
	}
	before := len(testStandIns.Slack.Messages())
	run("usage_to_slack_daily", time.Date(2025, 3, 1, 1, 0, 0, 0, seoul))
	msgs := testStandIns.Slack.Messages()[before:]
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "BigQuery usage for 2025-03-01") || !strings.Contains(msgs[0].Text, "• *etl@example.com*: `2.00` GiB") {
		t.Fatalf("the usage message built in Python: %+v", msgs)
	}
	r := run("events_export_daily", time.Date(2025, 3, 1, 2, 0, 0, 0, seoul))
	if got := xcomString(t, s, r, "report"); !strings.Contains(got, "Exports for 2025-03-01") || !strings.Contains(got, "• events: 3 rows") {
		t.Errorf("the export report: %s", got)
	}
}
