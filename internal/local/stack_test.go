package local_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/updraft-dev/updraft/emulators"
	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/emulators/emutest"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/cli"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/render"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

var updraftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-bin-")
	if err != nil {
		panic(err)
	}
	updraftBin = filepath.Join(dir, "updraft")
	// updraft-supervise next to it, as `make build` puts it: the workers' shell attempts run
	// under that dedicated supervisor (internal/proctree), so the lost-worker, timeout and
	// kill guarantees below are checked with it.
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/updraft-dev/updraft/cmd/updraft", "github.com/updraft-dev/updraft/cmd/updraft-supervise").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build updraft and updraft-supervise: %v\n%s", err, out)
		os.Exit(2)
	}
	defer os.RemoveAll(dir)
	// The stand-ins Google ships no emulator for, shared by this binary's tests.
	standIns, err := localtest.StartStandIns(filepath.Join(dir, "stand-ins"), []slackfake.User{{ID: "U1", Name: "kim", Email: "kim@example.com"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer standIns.Stop()
	testStandIns = standIns
	emutest.Main(m)
}

var testStandIns *local.StandIns

type stackBundle struct {
	ctx    context.Context
	stack  *local.Stack
	logDir string
	env    []string
	stderr *localtest.SyncBuffer
}

// startStack runs a local stack (dispatcher with worker subprocesses, advancer; no ticker)
// on its own project until the test ends.
func startStack(t *testing.T, lease time.Duration, workerCmd ...string) *stackBundle {
	t.Helper()
	return startStackClock(t, lease, nil, workerCmd...)
}

// startStackClock is startStack with the engine's clock (nil: time.Now).
func startStackClock(t *testing.T, lease time.Duration, now func() time.Time, workerCmd ...string) *stackBundle {
	t.Helper()
	return startStackWith(t, lease, now, 0, workerCmd...)
}

// startStackWith is startStackClock with warm workers (local.Config.WarmWorkers; 0: a
// process per attempt).
func startStackWith(t *testing.T, lease time.Duration, now func() time.Time, warm int, workerCmd ...string) *stackBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	project := emutest.Project(t)
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	logDir := t.TempDir()
	stderr := &localtest.SyncBuffer{}
	if len(workerCmd) == 0 {
		workerCmd = []string{updraftBin, "worker"}
	}
	st, err := local.Open(ctx, local.Config{
		Project: project, Env: append(set.Env(), testStandIns.Env()...), LogDir: logDir, WorkerCmd: workerCmd,
		Log: slog.New(slog.NewTextHandler(stderr, nil)), WorkerStderr: stderr,
		Engine: engine.Config{Lease: lease}, WorkerEnv: []string{"UPDRAFT_LEASE=" + lease.String(), "UPDRAFT_UI_URL=http://ui.test"}, Now: now,
		WarmWorkers: warm,
	})
	if err != nil {
		t.Fatal(err)
	}
	grantDevAdmin(t, ctx, st)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
		if t.Failed() {
			t.Logf("stack stderr:\n%s", stderr.String())
		}
	})
	env := append([]string{"GOOGLE_CLOUD_PROJECT=" + project, "UPDRAFT_LOG_DIR=" + logDir}, set.Env()...)
	env = append(env, testStandIns.Env()...)
	return &stackBundle{ctx: ctx, stack: st, logDir: logDir, env: env, stderr: stderr}
}

// grantDevAdmin makes the dev identity admin, as `updraft dev` does: the CLI's local mode
// checks roles as that identity.
func grantDevAdmin(t *testing.T, ctx context.Context, st *local.Stack) {
	t.Helper()
	if _, err := access.New(st.Store, nil).Grant(ctx, auth.DefaultDevEmail, access.Admin, access.Actor{Who: "test", From: "cli"}); err != nil {
		t.Fatal(err)
	}
}

func (s *stackBundle) deployExamples(t *testing.T) {
	t.Helper()
	res, err := dag.LoadFiles([]string{"../../examples/dags"}, dag.Options{
		ValidateCron: func(e string) error { _, err := schedule.ParseCron(e); return err },
	})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("examples: %v %v", err, res.Errors)
	}
	for _, d := range res.DAGs {
		src, _ := os.ReadFile(d.Source.File)
		if err := bundle.Pin(d, "../../examples/dags", ""); err != nil { // the folder in place, as updraft dev does
			t.Fatal(err)
		}
		if _, err := s.stack.Engine.Deploy(s.ctx, d, src); err != nil {
			t.Fatal(err)
		}
		if err := s.stack.Engine.SetPaused(s.ctx, d.ID, true); err != nil { // runs only when triggered here
			t.Fatal(err)
		}
	}
}

// waitRun polls the run until it finishes (a signal from the store, with a deadline).
func (s *stackBundle) waitRun(t *testing.T, r *scheduler.Run) scheduler.RunState {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if ti := s.upForRetry(r); ti != nil {
			t.Fatalf("%s failed and waits for a retry: %s", ti.TaskID, ti.Error)
		}
		v, err := s.stack.Store.GetRun(s.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Rec.State.Finished() {
			return v.Rec.State
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a store watch, not a timing assumption
	}
	tis, _ := s.stack.Store.ListTaskInstances(s.ctx, r.DagID, r.RunID)
	for _, ti := range tis {
		t.Logf("%s: %s try %d %s", ti.Rec.TaskID, ti.Rec.State, ti.Rec.TryNumber, ti.Rec.Error)
	}
	t.Fatalf("run %s/%s did not finish within 2 minutes", r.DagID, r.RunID)
	return ""
}

func (s *stackBundle) states(t *testing.T, r *scheduler.Run) map[string]scheduler.TaskState {
	tis, err := s.stack.Store.ListTaskInstances(s.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]scheduler.TaskState{}
	for _, ti := range tis {
		out[ti.Rec.TaskID] = ti.Rec.State
	}
	return out
}

// cli runs the updraft command in-process against this stack's project.
//
// It acts as the dev identity, which the stack's start granted admin as `updraft dev` does:
// local CLI commands go through the console's roles (docs/cli.md).
func (s *stackBundle) cli(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	env := map[string]string{}
	for _, kv := range s.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	app := &cli.App{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := app.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

func TestExamplesEndToEnd(t *testing.T) {
	s := startStack(t, time.Minute)
	s.deployExamples(t)
	cases := []struct {
		dag   string
		run   scheduler.RunState
		tasks map[string]scheduler.TaskState
	}{
		{"hello_chain", scheduler.RunSuccess, map[string]scheduler.TaskState{
			"extract": "success", "transform": "success", "load": "success"}},
		{"regional_sales_daily", scheduler.RunSuccess, map[string]scheduler.TaskState{
			"extract": "success", "load_kr": "success", "load_jp": "success", "load_us": "success", "load_eu": "success",
			"all_loaded": "success", "report": "success"}},
		{"broken_source", scheduler.RunFailed, map[string]scheduler.TaskState{
			"fetch": "failed", "publish": "upstream_failed"}},
	}
	runs := map[string]*scheduler.Run{}
	for _, c := range cases {
		r, err := s.stack.Engine.Trigger(s.ctx, c.dag, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		runs[c.dag] = r
	}
	for _, c := range cases {
		r := runs[c.dag]
		if got := s.waitRun(t, r); got != c.run {
			t.Errorf("%s: run %s; want %s (tasks %v)", c.dag, got, c.run, s.states(t, r))
			continue
		}
		got := s.states(t, r)
		for task, want := range c.tasks {
			if got[task] != want {
				t.Errorf("%s.%s is %s; want %s", c.dag, task, got[task], want)
			}
		}
	}

	// The CLI shows the run, the XCom'd last line and the failed task's stderr.
	r := runs["hello_chain"]
	out, errOut, code := s.cli("runs", "show", r.DagID+"/"+r.RunID)
	if code != 0 || !strings.Contains(out, "transform  success") {
		t.Errorf("runs show: code %d\n%s%s", code, out, errOut)
	}
	out, _, code = s.cli("logs", r.DagID+"/"+r.RunID, "extract")
	if code != 0 || !strings.Contains(out, "extracting orders for") {
		t.Errorf("logs: code %d\n%s", code, out)
	}
	at, err := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "extract")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.stack.Store.GetAttempt(s.ctx, at.Rec.Ref())
	if err != nil || a.Rec.XCom != `{"rows": 42}` {
		t.Errorf("extract's XCom = %q (%v); want its last stdout line as JSON", a.Rec.XCom, err)
	}
	b := runs["broken_source"]
	out, _, _ = s.cli("logs", b.DagID+"/"+b.RunID, "fetch")
	if !strings.Contains(out, "partner API returned 503") || !strings.Contains(out, "exit code 1") {
		t.Errorf("logs of the failed task lack its stderr and exit code:\n%s", out)
	}
}

func TestKilledWorkerIsLostThenRetried(t *testing.T) {
	s := startStack(t, 2*time.Second)
	// The first try sleeps until killed; the retry succeeds.
	src := `id: sleepy
owner: owner@example.com
tasks:
  - id: nap
    type: shell
    retries: 1
    retry_delay: 0s
    with: {command: 'echo started; if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then sleep 600; fi; echo done'}
`
	d, err := dag.Parse("sleepy.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "sleepy", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the task to be running and its output logged, then SIGKILL the worker.
	var attempt scheduler.Attempt
	s.until(t, "the first try to start", func() bool {
		ti, err := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "nap")
		if err != nil || ti.Rec.State != scheduler.TaskRunning {
			return false
		}
		a, err := s.stack.Store.GetAttempt(s.ctx, ti.Rec.Ref())
		if err != nil {
			return false
		}
		b, _ := os.ReadFile(strings.TrimPrefix(a.Rec.LogRef, "file:"))
		attempt = a.Rec
		return bytes.Contains(b, []byte("started"))
	})
	pids := s.stack.Dispatcher.Running()
	if len(pids) != 1 {
		t.Fatalf("running workers %v; want 1", pids)
	}
	if err := syscall.Kill(-pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.until(t, "the dispatcher to reap the worker", func() bool { return len(s.stack.Dispatcher.Running()) == 0 })

	// Not lost silently: until its lease expires it shows as running; then the tick finds the
	// execution gone, fails the attempt as a lost worker, and the retry runs and succeeds.
	out, _, _ := s.cli("runs", "show", r.DagID+"/"+r.RunID)
	if !strings.Contains(out, "running") {
		t.Fatalf("right after the kill the task should still show running:\n%s", out)
	}
	s.until(t, "the tick to declare the worker lost", func() bool {
		rep := s.stack.TickOnce(s.ctx)
		return rep.LostWorkers == 1
	})
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success after the retry", got)
	}
	a, _ := s.stack.Store.GetAttempt(s.ctx, scheduler.AttemptRef{DagID: attempt.DagID, RunID: attempt.RunID, TaskID: attempt.TaskID, AttemptID: attempt.ID})
	if a.Rec.State != scheduler.AttemptLost || !strings.Contains(a.Rec.Error, "lost worker") {
		t.Fatalf("first attempt: %s %q; want lost", a.Rec.State, a.Rec.Error)
	}
	ti, _ := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "nap")
	if ti.Rec.TryNumber != 2 || ti.Rec.State != scheduler.TaskSuccess {
		t.Fatalf("task: %s try %d; want success on try 2", ti.Rec.State, ti.Rec.TryNumber)
	}
}

// until polls cond (a store watch) until it holds, failing the test after a minute.
func (s *stackBundle) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestUndispatchableTaskIsDeadLetteredAndFails(t *testing.T) {
	s := startStack(t, time.Minute, "/nonexistent/updraft-worker") // every start fails
	src := `id: doomed
owner: owner@example.com
tasks:
  - {id: a, type: shell, with: {command: "true"}}
  - {id: b, type: shell, needs: [a], with: {command: "true"}}
`
	d, err := dag.Parse("doomed.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "doomed", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed", got)
	}
	ti, _ := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "a")
	if ti.Rec.State != scheduler.TaskFailed || !strings.Contains(ti.Rec.Error, "dead-lettered") {
		t.Fatalf("a: %s %q; want failed with the dead-letter reason", ti.Rec.State, ti.Rec.Error)
	}
	// The reason is the error the dispatcher saw, not a pointer to its log.
	if !strings.Contains(ti.Rec.Error, "/nonexistent/updraft-worker") {
		t.Fatalf("a: reason %q; want the dispatcher's error naming the worker command", ti.Rec.Error)
	}
	// The handler counts the message once it is done with it, just after failing the run.
	deadline := time.Now().Add(30 * time.Second)
	for s.stack.Status().DeadLettered == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a counter, not a timing assumption
	}
	if st := s.stack.Status(); st.DeadLettered != 1 {
		t.Fatalf("dead-lettered count %d; want 1", st.DeadLettered)
	}
}

func TestShellSkipAndTimeoutKillTheTree(t *testing.T) {
	s := startStack(t, time.Minute)
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	src := fmt.Sprintf(`id: shells
owner: owner@example.com
tasks:
  - {id: skipper, type: shell, with: {command: "echo nothing new today; exit 99"}}
  - {id: after_skip, type: shell, needs: [skipper], with: {command: "true"}}
  - id: hangs
    type: shell
    timeout: 1s
    with: {command: "sleep 300 & echo $! > %s; wait"}
`, pidFile)
	d, err := dag.Parse("shells.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "shells", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed (hangs timed out)", got)
	}
	got := s.states(t, r)
	if got["skipper"] != scheduler.TaskSkipped || got["after_skip"] != scheduler.TaskSkipped || got["hangs"] != scheduler.TaskFailed {
		t.Fatalf("states %v; want exit 99 skipped (and its downstream), the timeout failed", got)
	}
	ti, _ := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "hangs")
	if !strings.Contains(ti.Rec.Error, "timed out after 1s") {
		t.Fatalf("hangs error %q", ti.Rec.Error)
	}
	// The timeout killed the task's whole process group, not only the shell.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	s.until(t, "the sleeping grandchild to be gone", func() bool { return syscall.Kill(pid, 0) != nil })
}

func TestTemplatesXComAndVariablesEndToEnd(t *testing.T) {
	s := startStack(t, time.Minute)
	if err := s.stack.Engine.SetVariable(s.ctx, "report-channel", "#data-alerts"); err != nil {
		t.Fatal(err)
	}
	src := `id: templated
owner: owner@example.com
timezone: Asia/Seoul
params: {region: kr}
tasks:
  - id: extract
    type: shell
    with: {command: 'echo "{\"rows\": 3, \"day\": \"{{ .ds }}\"}"'}
  - id: report
    type: shell
    needs: [extract]
    with:
      env: {ROWS: '{{ (xcom "extract").rows }}', REGION: '{{ .params.region }}', CHANNEL: '{{ var "report-channel" "#test" }}'}
      command: 'echo "$ROWS rows for {{ .ds }} in $REGION to $CHANNEL"; echo "extract took {{ duration "extract" }}, see {{ .ti.log_url }}"'
  - id: broken
    type: shell
    retries: 3
    with: {command: 'echo "$V"', env: {V: '{{ .params.no_such_value }}'}} # validation can't know; rendering fails
`
	d, err := dag.Parse("templated.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	// 00:30 KST on Jan 2 is 15:30 UTC on Jan 1: .ds must be the KST date.
	r, err := s.stack.Engine.Trigger(s.ctx, "templated", map[string]any{"region": "jp"}, time.Date(2025, 1, 2, 0, 30, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	s.waitRun(t, r)
	states := s.states(t, r)
	if states["extract"] != "success" || states["report"] != "success" || states["broken"] != "failed" {
		t.Fatalf("states %v", states)
	}
	out, _, _ := s.cli("logs", r.DagID+"/"+r.RunID, "report")
	if !strings.Contains(out, "3 rows for 2025-01-02 in jp to #data-alerts") {
		t.Fatalf("report's log:\n%s", out)
	}
	// The upstream task's last try, as its instance records it; the UI page of this try.
	ex := mustTI(t, s, r, "extract")
	took := render.FormatDuration(ex.EndedAt.Sub(*ex.StartedAt))
	logURL := "http://ui.test/dags/templated/runs/" + url.PathEscape(r.RunID) + "/tasks/report?try=1"
	if want := "extract took " + took + ", see " + logURL; !strings.Contains(out, want) {
		t.Fatalf("report's log does not say %q:\n%s", want, out)
	}
	ti, _ := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "broken")
	if ti.Rec.TryNumber != 1 || !strings.Contains(ti.Rec.Error, `with.env.V:1`) || !strings.Contains(ti.Rec.Error, "no_such_value") {
		t.Fatalf("broken: try %d, error %q; want one try failing with the template error and its line", ti.Rec.TryNumber, ti.Rec.Error)
	}
	a, _ := s.stack.Store.GetAttempt(s.ctx, mustTI(t, s, r, "report").Ref())
	if !strings.Contains(a.Rec.Rendered, `"REGION":"jp"`) || !strings.Contains(a.Rec.Rendered, `"ROWS":"3"`) {
		t.Fatalf("report's stored arguments: %q", a.Rec.Rendered)
	}
}

func mustTI(t *testing.T, s *stackBundle, r *scheduler.Run, task string) scheduler.TaskInstance {
	t.Helper()
	v, err := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatal(err)
	}
	return v.Rec
}

func TestHTTPToSlackWithASecretConnection(t *testing.T) {
	s := startStack(t, time.Minute)
	api := httptest.NewServer(http.HandlerFunc(local.SampleOrders))
	defer api.Close()
	token := "xox" + "b-e2e-" + strings.Repeat("7", 12)
	sm, err := secrets.Open(s.ctx, s.stack.Project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.Set(s.ctx, "updraft-connections-slack", `{"conn_type": "slack", "password": "`+token+`"}`); err != nil {
		t.Fatal(err)
	}
	if err := sm.Set(s.ctx, "updraft-connections-orders_api", `{"conn_type": "http", "host": "`+api.URL+`"}`); err != nil {
		t.Fatal(err)
	}
	src := `id: orders_to_slack
owner: kim@example.com
timezone: Asia/Seoul
tasks:
  - id: fetch
    type: http
    with: {connection: orders_api, url: /examples/orders, params: {date: "{{ .ds }}"}, response: json}
  - id: post
    type: slack.post
    needs: [fetch]
    with:
      channel: '{{ var "orders-channel" "#orders" }}'
      text: |
        {{ len (xcom "fetch").orders }} orders on {{ .ds }} (token {{ (conn "slack").password }})
`
	d, err := dag.Parse("o.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	before := len(testStandIns.Slack.Messages())
	seoul, _ := time.LoadLocation("Asia/Seoul")
	r, err := s.stack.Engine.Trigger(s.ctx, "orders_to_slack", nil, time.Date(2025, 3, 1, 9, 0, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s: %v", got, s.states(t, r))
	}
	msgs := testStandIns.Slack.Messages()[before:]
	if len(msgs) != 1 || msgs[0].ChannelName != "orders" || !strings.Contains(msgs[0].Text, "orders on 2025-03-01") {
		t.Fatalf("posted %+v", msgs)
	}
	// The token reached Slack (it is the connection's password) but is masked everywhere
	// Updraft keeps it: the stored arguments and the log.
	post := mustTI(t, s, r, "post")
	a, _ := s.stack.Store.GetAttempt(s.ctx, post.Ref())
	if strings.Contains(a.Rec.Rendered, token) || !strings.Contains(a.Rec.Rendered, "(token ***)") {
		t.Fatalf("stored arguments leak or miss the mask: %s", a.Rec.Rendered)
	}
	out, _, _ := s.cli("logs", r.DagID+"/"+r.RunID, "post", "--json")
	if strings.Contains(out, token) {
		t.Fatalf("the log leaks the token:\n%s", out)
	}
}

// bigQuery starts a BigQuery emulator for the stack's project (it serves one project) and
// points this process and its workers at it.
func bigQuery(t *testing.T, s *stackBundle) *bigquery.Client {
	t.Helper()
	if _, err := bqemu.EnsureBuilt(s.ctx); err != nil {
		t.Fatal(err)
	}
	bq, err := bqemu.Start(s.ctx, s.stack.Project, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bq.Stop() })
	t.Setenv(bqemu.EnvVar, bq.Host)
	c, err := bigquery.NewClient(s.ctx, s.stack.Project, bq.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := local.SeedExamples(s.ctx, s.stack.Project, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), bq.ClientOptions()...); err != nil {
		t.Fatal(err)
	}
	return c
}

func countRows(t *testing.T, c *bigquery.Client, q string) int64 {
	t.Helper()
	it, err := c.Query(q).Read(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return row[0].(int64)
}

func TestExamplePipelinesOnBigQuery(t *testing.T) {
	s := startStack(t, time.Minute)
	bq := bigQuery(t, s)
	s.deployExamples(t)
	api := httptest.NewServer(http.HandlerFunc(local.SampleOrders))
	defer api.Close()
	sm, err := secrets.Open(s.ctx, s.stack.Project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	for name, value := range map[string]string{
		"updraft-connections-slack":      `{"conn_type": "slack", "password": "` + "xox" + `b-examples-fake"}`,
		"updraft-connections-orders_api": `{"conn_type": "http", "host": "` + api.URL + `"}`,
	} {
		if err := sm.Set(s.ctx, name, value); err != nil {
			t.Fatal(err)
		}
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	run := func(dagID string, at time.Time) *scheduler.Run {
		t.Helper()
		r, err := s.stack.Engine.Trigger(s.ctx, dagID, nil, at)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.waitRun(t, r); got != scheduler.RunSuccess {
			for task := range s.states(t, r) {
				ti := mustTI(t, s, r, task)
				t.Logf("%s: %s %s", task, ti.State, ti.Error)
			}
			t.Fatalf("%s: run %s", dagID, got)
		}
		return r
	}

	// The usage summary: query per user, format over the rows, post to the channel variable's
	// default. A manual run's ds is its logical date's date (Airflow 2): 2025-03-01 (KST).
	before := len(testStandIns.Slack.Messages())
	run("bigquery_usage_daily", time.Date(2025, 3, 1, 1, 0, 0, 0, seoul))
	msgs := testStandIns.Slack.Messages()[before:]
	if len(msgs) != 1 || msgs[0].ChannelName != "data-alerts-test" || !strings.Contains(msgs[0].Text, "BigQuery usage for 2025-03-01") ||
		!strings.Contains(msgs[0].Text, "*etl@example.com*: `2.00` GiB") {
		t.Fatalf("usage summary posted: %+v", msgs)
	}

	// The idempotent load: a day loaded, re-run and backfilled keeps one copy of each order.
	count := func(day string) int64 {
		return countRows(t, bq, "SELECT COUNT(*) FROM updraft_examples.orders WHERE order_date = DATE '"+day+"'")
	}
	r := run("orders_to_warehouse_daily", time.Date(2025, 3, 1, 3, 0, 0, 0, seoul))
	first := count("2025-03-01")
	if first < 3 {
		t.Fatalf("loaded %d orders for 2025-03-01; want the API's 3 or more", first)
	}
	if _, err := s.stack.Engine.ClearRun(s.ctx, r.DagID, r.RunID); err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("re-run: %s", got)
	}
	bf, _, err := s.stack.Engine.StartBackfill(s.ctx, engine.BackfillRequest{DagID: "orders_to_warehouse_daily",
		From: "2025-03-01", To: "2025-03-02", Reprocess: "completed"})
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "the backfill to finish", func() bool {
		s.stack.TickOnce(s.ctx)
		v, err := s.stack.Store.GetBackfill(s.ctx, bf.ID)
		return err == nil && v.Rec.State == scheduler.BackfillDone
	})
	if got := count("2025-03-01"); got != first {
		t.Fatalf("after a re-run and a backfill, 2025-03-01 has %d orders; want %d (exactly one copy)", got, first)
	}
	if total, distinct := countRows(t, bq, "SELECT COUNT(*) FROM updraft_examples.orders"),
		countRows(t, bq, "SELECT COUNT(DISTINCT id) FROM updraft_examples.orders"); total != distinct || count("2025-03-02") < 3 {
		t.Fatalf("orders: %d rows, %d distinct ids; 2025-03-02 has %d", total, distinct, count("2025-03-02"))
	}

	// The DRY pipeline: four sources loaded from one definition.
	run("marketing_sources_daily", time.Date(2025, 3, 1, 7, 0, 0, 0, seoul))
	for _, src := range []string{"google_ads", "meta_ads", "naver_ads", "kakao_moment"} {
		if n := countRows(t, bq, "SELECT COUNT(*) FROM updraft_examples.spend_"+src+"_20250301 WHERE source = '"+src+"'"); n != 1 {
			t.Errorf("spend_%s_20250301 has %d rows; want 1", src, n)
		}
	}
}

// upForRetry returns a task of the run waiting for a retry (tests run no ticker, so it would
// wait in vain), or nil.
func (s *stackBundle) upForRetry(r *scheduler.Run) *scheduler.TaskInstance {
	tis, _ := s.stack.Store.ListTaskInstances(s.ctx, r.DagID, r.RunID)
	for _, ti := range tis {
		if ti.Rec.State == scheduler.TaskUpForRetry && ti.Rec.TickDueAt != nil && ti.Rec.TickDueAt.After(time.Now().Add(5*time.Second)) {
			return &ti.Rec
		}
	}
	return nil
}

func TestXComOverTheLimitFailsWithAPointer(t *testing.T) {
	s := startStack(t, time.Minute)
	src := `id: big_xcom
owner: owner@example.com
tasks:
  - id: huge
    type: shell
    retries: 2
    with: {command: 'head -c 300000 /dev/zero | tr "\0" "x"; echo'}
`
	d, err := dag.Parse("big.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, "big_xcom", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.waitRun(t, r)
	ti := mustTI(t, s, r, "huge")
	if ti.State != scheduler.TaskFailed || ti.TryNumber != 1 || !strings.Contains(ti.Error, "over the 256 KiB limit") || !strings.Contains(ti.Error, "destination") {
		t.Fatalf("huge: %s try %d %q; want one failed try pointing to a destination table", ti.State, ti.TryNumber, ti.Error)
	}
}
