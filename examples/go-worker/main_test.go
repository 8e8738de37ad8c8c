package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/emulators/emutest"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// workerBin is this example built as a worker binary, as README.md builds it.
var workerBin string

var testStandIns *local.StandIns

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-go-worker-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	workerBin = filepath.Join(dir, "go-worker")
	if out, err := exec.Command("go", "build", "-o", workerBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the example worker: %v\n%s", err, out)
		os.Exit(2)
	}
	// The stand-ins Google ships no emulator for, as the local stack's tests start them.
	standIns, err := localtest.StartStandIns(filepath.Join(dir, "stand-ins"), []slackfake.User{{ID: "U1", Name: "data-eng", Email: "data-eng@example.com"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer standIns.Stop()
	testStandIns = standIns
	emutest.Main(m)
}

type bundle struct {
	ctx   context.Context
	stack *local.Stack
}

// startStack runs a local stack (dispatcher starting the example worker, advancer; no
// ticker) on its own project until the test ends.
func startStack(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	stderr := &localtest.SyncBuffer{}
	st, err := local.Open(ctx, local.Config{
		Project: emutest.Project(t), Env: append(set.Env(), testStandIns.Env()...), LogDir: t.TempDir(),
		WorkerCmd: []string{workerBin}, Log: slog.New(slog.NewTextHandler(stderr, nil)), WorkerStderr: stderr,
		Engine: engine.Config{Lease: time.Minute}, WorkerEnv: []string{"UPDRAFT_LEASE=1m"},
	})
	if err != nil {
		t.Fatal(err)
	}
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
	return &bundle{ctx: ctx, stack: st}
}

func parseOptions() dag.Options {
	return dag.Options{
		ValidateCron: func(e string) error { _, err := schedule.ParseCron(e); return err },
		CheckArgs:    tasktypes.Builtins().CheckArgs,
	}
}

func (b *bundle) deploy(t *testing.T, d *dag.DAG, src []byte) {
	t.Helper()
	if _, err := b.stack.Engine.Deploy(b.ctx, d, src); err != nil {
		t.Fatal(err)
	}
	if err := b.stack.Engine.SetPaused(b.ctx, d.ID, true); err != nil { // runs only when triggered here
		t.Fatal(err)
	}
}

// waitRun polls the store on a short ticker until the run finishes, failing the test after a
// generous deadline.
func (b *bundle) waitRun(t *testing.T, r *scheduler.Run) scheduler.RunState {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := b.stack.Store.GetRun(b.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Rec.State.Finished() {
			return v.Rec.State
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			tis, _ := b.stack.Store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
			for _, ti := range tis {
				t.Logf("%s: %s try %d %s", ti.Rec.TaskID, ti.Rec.State, ti.Rec.TryNumber, ti.Rec.Error)
			}
			t.Fatalf("run %s/%s did not finish within 2 minutes", r.DagID, r.RunID)
		}
	}
}

func (b *bundle) task(t *testing.T, r *scheduler.Run, id string) (scheduler.TaskInstance, scheduler.Attempt) {
	t.Helper()
	ti, err := b.stack.Store.GetTaskInstance(b.ctx, r.DagID, r.RunID, id)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if ti.Rec.AttemptID == "" { // skipped by its upstream: never attempted
		return ti.Rec, scheduler.Attempt{}
	}
	a, err := b.stack.Store.GetAttempt(b.ctx, ti.Rec.Ref())
	if err != nil {
		t.Fatalf("%s's attempt: %v", id, err)
	}
	return ti.Rec, a.Rec
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	return json.Unmarshal([]byte(got), &g) == nil && reflect.DeepEqual(g, w)
}

func TestOrdersDedupeDailyRunsOnTheCustomWorker(t *testing.T) {
	b := startStack(t)
	res, err := dag.LoadFiles([]string{"dags"}, parseOptions())
	if err != nil || len(res.Errors) > 0 || len(res.DAGs) != 1 {
		t.Fatalf("example DAGs: %v %v %d", err, res.Errors, len(res.DAGs))
	}
	d := res.DAGs[0]
	src, err := os.ReadFile(d.Source.File)
	if err != nil {
		t.Fatal(err)
	}
	b.deploy(t, d, src)
	seoul, _ := time.LoadLocation("Asia/Seoul")
	// A manual run's ds is its logical date's date (as in Airflow 2): March 1.
	r, err := b.stack.Engine.Trigger(b.ctx, d.ID, nil, time.Date(2025, 3, 1, 9, 0, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.waitRun(t, r); got != scheduler.RunSuccess {
		for _, id := range []string{"fetch_orders", "dedupe_orders", "check_duplicates", "report"} {
			ti, _ := b.task(t, r, id)
			t.Logf("%s: %s %s", id, ti.State, ti.Error)
		}
		t.Fatalf("run %s; want success", got)
	}
	// The go task deduped the five orders of fetch_orders' XCom (ids 101 and 102 twice).
	ti, a := b.task(t, r, "dedupe_orders")
	if ti.State != scheduler.TaskSuccess || !sameJSON(t, a.XCom,
		`{"received": 5, "unique": 3, "duplicates": 2, "duplicate_keys": [101, 102], "revenue": 49.75}`) {
		t.Errorf("dedupe_orders: %s, XCom %s", ti.State, a.XCom)
	}
	log, err := os.ReadFile(strings.TrimPrefix(a.LogRef, "file:"))
	if err != nil || !strings.Contains(string(log), "dropped 2 repeated orders (id 101, 102)") {
		t.Errorf("dedupe_orders' log (%v):\n%s", err, log)
	}
	// Its XCom reached the next go task through a template...
	ti, a = b.task(t, r, "check_duplicates")
	if ti.State != scheduler.TaskSuccess || !sameJSON(t, a.XCom, `{"rate": 0.4, "max_rate": 0.5}`) {
		t.Errorf("check_duplicates: %s, XCom %s", ti.State, a.XCom)
	}
	// ...and the downstream shell task.
	ti, a = b.task(t, r, "report")
	if want := `"2025-03-01: 3 unique orders of 5, revenue 49.75, duplicate rate 0.4"`; ti.State != scheduler.TaskSuccess || a.XCom != want {
		t.Errorf("report: %s, XCom %s; want %s", ti.State, a.XCom, want)
	}
}

func TestGoTasksFailSkipAndNameTheWorkersFunctions(t *testing.T) {
	b := startStack(t)
	src := []byte(`id: go_outcomes
owner: data-eng@example.com
tasks:
  - id: not_registered
    type: go
    retries: 2
    with: {func: load_to_warehouse}
  - id: empty_feed
    type: go
    with: {func: dedupe_orders, orders: []}
  - id: after_empty
    type: shell
    needs: [empty_feed]
    with: {command: echo should not run}
  - id: replaying_feed
    type: go
    retries: 1
    retry_delay: 0s
    with:
      func: check_duplicate_rate
      summary: {received: 10, duplicates: 4}
      max_rate: 0.25
`)
	d, err := dag.Parse("go_outcomes.yaml", src, parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	b.deploy(t, d, src)
	r, err := b.stack.Engine.Trigger(b.ctx, d.ID, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed", got)
	}
	// A function the worker does not register fails at once, retries or not, and says which
	// functions the worker has and that it must be a custom build.
	ti, _ := b.task(t, r, "not_registered")
	if ti.State != scheduler.TaskFailed || ti.TryNumber != 1 {
		t.Errorf("not_registered: %s try %d; want failed on the first try (no retry can fix it)", ti.State, ti.TryNumber)
	}
	for _, s := range []string{`no function "load_to_warehouse"`, "check_duplicate_rate, dedupe_orders", "custom worker", "docs/tasks/go.md"} {
		if !strings.Contains(ti.Error, s) {
			t.Errorf("not_registered's error %q lacks %q", ti.Error, s)
		}
	}
	// ErrSkip skips the task, and its downstream by the default trigger rule.
	for _, id := range []string{"empty_feed", "after_empty"} {
		if ti, _ := b.task(t, r, id); ti.State != scheduler.TaskSkipped {
			t.Errorf("%s: %s %q; want skipped", id, ti.State, ti.Error)
		}
	}
	// A returned error fails the try with its text, and the retry policy applies.
	ti, _ = b.task(t, r, "replaying_feed")
	if ti.State != scheduler.TaskFailed || ti.TryNumber != 2 ||
		!strings.Contains(ti.Error, "check_duplicate_rate: duplicate rate 40% (4 of 10 orders) is over the 25% limit") {
		t.Errorf("replaying_feed: %s try %d %q; want failed with the function's error after its retry", ti.State, ti.TryNumber, ti.Error)
	}
}
