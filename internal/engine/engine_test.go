package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

func TestMain(m *testing.M) { emutest.Main(m) }

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// bundle is one test's world: its own project on the emulators.
type bundle struct {
	ctx     context.Context
	store   *fsstore.Store
	queue   *psqueue.Queue
	eng     *engine.Engine
	clock   *clock
	worker  *taskrun.Worker
	runs    map[string]*atomic.Int64 // executions per task id, by the test task types
	logs    *logRecorder             // every line the engine and the worker logged
	project string
}

func setup(t *testing.T, cfg engine.Config) *bundle {
	t.Helper()
	ctx := context.Background()
	project := emutest.Project(t)
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2025, 1, 10, 0, 30, 0, 0, time.UTC)}
	logs := newLogRecorder()
	log := slog.New(logs)
	eng := engine.New(st, q, cfg, clk.Now, log)
	b := &bundle{ctx: ctx, store: st, queue: q, eng: eng, clock: clk, runs: map[string]*atomic.Int64{}, logs: logs, project: project}
	reg := tasktypes.Builtins()
	count := func(id string) *atomic.Int64 {
		if b.runs[id] == nil {
			b.runs[id] = &atomic.Int64{}
		}
		return b.runs[id]
	}
	for _, id := range []string{"a", "b", "c", "d", "e", "only", "cleanup", "alert", "join", "extract", "load", "skip_me", "report", "done"} {
		count(id)
	}
	reg.Add(taskrun.Type{Name: "test.ok", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		b.runs[tc.Ref.TaskID].Add(1)
		return engine.Result{State: scheduler.AttemptSuccess}
	}})
	reg.Add(taskrun.Type{Name: "test.fail", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		b.runs[tc.Ref.TaskID].Add(1)
		return engine.Result{State: scheduler.AttemptFailed, Error: "boom"}
	}})
	reg.Add(taskrun.Type{Name: "test.skip", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		b.runs[tc.Ref.TaskID].Add(1)
		return engine.Result{State: scheduler.AttemptSkipped}
	}})
	b.worker = &taskrun.Worker{Engine: eng, Registry: reg, Name: "test", Log: log}
	return b
}

var testTypes = append(append([]string{}, dag.BuiltinTaskTypes...), "test.ok", "test.fail", "test.skip", "count", "test.poke", "test.item", "test.list", "test.slow")

func (b *bundle) deploy(t *testing.T, src string) *dag.DAG {
	t.Helper()
	d, err := dag.Parse("test.yaml", []byte(src), dag.Options{
		TaskTypes:    testTypes,
		ValidateCron: func(s string) error { _, err := schedule.ParseCron(s); return err },
	})
	if err != nil {
		t.Fatalf("parse DAG: %v", err)
	}
	if _, err := b.eng.Deploy(b.ctx, d, []byte(src)); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return d
}

// trigger starts a manual run of a deployed DAG at the fake clock's now.
func (b *bundle) trigger(t *testing.T, dagID string) *scheduler.Run {
	t.Helper()
	r, err := b.eng.Trigger(b.ctx, dagID, nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (b *bundle) ti(t *testing.T, r *scheduler.Run, task string) scheduler.TaskInstance {
	t.Helper()
	v, err := b.eng.TaskInstance(b.ctx, r.DagID, r.RunID, task) // `none` when it has no document yet
	if err != nil {
		t.Fatalf("task instance %s: %v", task, err)
	}
	return v.Rec
}

func (b *bundle) ref(t *testing.T, r *scheduler.Run, task string) scheduler.AttemptRef {
	ti := b.ti(t, r, task)
	if ti.State != scheduler.TaskQueued {
		t.Fatalf("task %s is %s, want queued", task, ti.State)
	}
	return scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: task, TryNumber: ti.TryNumber, AttemptID: ti.AttemptID}
}

func (b *bundle) execute(t *testing.T, r *scheduler.Run, task string) {
	t.Helper()
	if err := b.worker.Execute(b.ctx, b.ref(t, r, task)); err != nil {
		t.Fatalf("execute %s: %v", task, err)
	}
}

func (b *bundle) runState(t *testing.T, r *scheduler.Run) scheduler.RunState {
	v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Rec.State
}

func dailyDAG(id, start string, catchup bool, maxActive int) string {
	return fmt.Sprintf(`id: %s
owner: owner@example.com
schedule: "0 0 * * *"
start: %s
catchup: %v
max_active_runs: %d
tasks:
  - id: only
    type: noop
`, id, start, catchup, maxActive)
}

func TestIdleDAGsCostTheTickNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	for i := range 40 {
		start := "2025-03-01" // not due until March
		if i < 3 {
			start = "2025-01-01"
		}
		b.deploy(t, dailyDAG(fmt.Sprintf("dag_%02d", i), start, false, 16))
	}
	rep, err := b.eng.Tick(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DueDAGs != 3 || rep.RunsCreated != 3 {
		t.Fatalf("first tick: due %d, runs created %d; want 3 and 3 (%v)", rep.DueDAGs, rep.RunsCreated, rep.Errors)
	}
	// Without catchup only the latest complete interval runs: [Jan 9, Jan 10).
	runs, err := b.store.ListRuns(b.ctx, "dag_00", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Rec.RunID != "scheduled__2025-01-09T00:00:00Z" || runs[0].Rec.State != scheduler.RunSuccess {
		t.Fatalf("runs of dag_00 = %+v; want one successful scheduled__2025-01-09T00:00:00Z", runs)
	}
	rep, err = b.eng.Tick(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DueDAGs != 0 || rep.Reads != 0 {
		t.Fatalf("idle tick read %d documents (%d due DAGs); want 0: it must read only what is due", rep.Reads, rep.DueDAGs)
	}
	b.clock.Add(24 * time.Hour)
	rep, err = b.eng.Tick(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DueDAGs != 3 || rep.RunsCreated != 3 {
		t.Fatalf("next day: due %d, created %d; want 3, 3", rep.DueDAGs, rep.RunsCreated)
	}
}

func TestConcurrentTicksCreateOneRun(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: busy
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok}
`)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if _, err := b.eng.Tick(b.ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	runs, err := b.store.ListRuns(b.ctx, "busy", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("5 concurrent ticks made %d runs; want 1", len(runs))
	}
	if got := b.eng.Stats.RunsCreated.Load(); got != 1 {
		t.Fatalf("runs created = %d; want 1", got)
	}
	if got := b.eng.Stats.TasksQueued.Load(); got != 2 {
		t.Fatalf("tasks dispatched = %d; want each of the 2 once", got)
	}
}

func TestCatchupOldestFirstWithinMaxActiveRuns(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	src := `id: backlog
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
catchup: true
max_active_runs: 2
tasks:
  - {id: only, type: test.ok}
`
	b.deploy(t, src)
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	runs, _ := b.store.ListRuns(b.ctx, "backlog", 20)
	if len(runs) != 2 || runs[1].Rec.RunID != "scheduled__2025-01-01T00:00:00Z" || runs[0].Rec.RunID != "scheduled__2025-01-02T00:00:00Z" {
		t.Fatalf("first tick runs = %v; want the two oldest intervals", runIDs(runs))
	}
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if runs, _ = b.store.ListRuns(b.ctx, "backlog", 20); len(runs) != 2 {
		t.Fatalf("a tick with 2 runs active made more: %v", runIDs(runs))
	}
	for _, r := range runs {
		b.execute(t, &r.Rec, "only")
	}
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if runs, _ = b.store.ListRuns(b.ctx, "backlog", 20); len(runs) != 4 || runs[0].Rec.RunID != "scheduled__2025-01-04T00:00:00Z" {
		t.Fatalf("after the first two finished: %v; want the next two intervals", runIDs(runs))
	}
}

func runIDs(rs []fsstore.Versioned[scheduler.Run]) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Rec.RunID+":"+string(r.Rec.State))
	}
	return out
}

const chain = `id: chain
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok, needs: [a]}
  - {id: c, type: test.ok, needs: [b]}
`

func TestFastFollowQueuesDownstreamAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	if s := b.ti(t, r, "b").State; s != scheduler.TaskNone {
		t.Fatalf("b is %s before a ran; want none", s)
	}
	b.execute(t, r, "a")
	// No tick and no advancer ran: the worker itself queued b.
	b.execute(t, r, "b")
	b.execute(t, r, "c")
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", s)
	}
	// The advancer repeating the work finds nothing left to do.
	queued := b.eng.Stats.TasksQueued.Load()
	for _, task := range []string{"a", "b", "c"} {
		if err := b.eng.Advance(b.ctx, r.DagID, r.RunID, task); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.eng.Stats.TasksQueued.Load(); got != queued {
		t.Fatalf("re-advancing queued %d more tasks; want 0", got-queued)
	}
}

func TestDuplicateDeliveriesExecuteOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := b.worker.Execute(b.ctx, ref); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := b.runs["a"].Load(); n != 1 {
		t.Fatalf("the same attempt delivered 5 times ran %d times; want 1", n)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s; want success", s)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskQueued {
		t.Fatalf("b is %s; want queued", s)
	}
}

func TestFailureMarksDownstreamUpstreamFailed(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: broken
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.fail, needs: [a]}
  - {id: c, type: test.ok, needs: [b]}
  - {id: d, type: noop, needs: [c]}
`)
	r := b.trigger(t, "broken")
	b.execute(t, r, "a")
	b.execute(t, r, "b")
	want := map[string]scheduler.TaskState{"a": scheduler.TaskSuccess, "b": scheduler.TaskFailed,
		"c": scheduler.TaskUpstreamFailed, "d": scheduler.TaskUpstreamFailed}
	for task, w := range want {
		if s := b.ti(t, r, task).State; s != w {
			t.Errorf("%s is %s; want %s", task, s, w)
		}
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", s)
	}
	if ti := b.ti(t, r, "b"); ti.Error != "boom" {
		t.Fatalf("b's error = %q; want the task's error", ti.Error)
	}
}

func TestRetryWithoutDelayIsQueuedAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: flaky
owner: owner@example.com
tasks:
  - {id: a, type: test.fail, retries: 2, retry_delay: 0s}
`)
	r := b.trigger(t, "flaky")
	first := b.ref(t, r, "a")
	b.execute(t, r, "a")
	second := b.ref(t, r, "a")
	if second.TryNumber != 2 || second.AttemptID == first.AttemptID {
		t.Fatalf("after a failed try: %+v; want try 2 with a new attempt id", second)
	}
	b.execute(t, r, "a")
	b.execute(t, r, "a")
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskFailed || ti.TryNumber != 3 {
		t.Fatalf("after 3 failed tries: %s try %d; want failed try 3", ti.State, ti.TryNumber)
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", s)
	}
}

func TestRetryDelayWaitsForTheTick(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: patient
owner: owner@example.com
tasks:
  - {id: a, type: test.fail, retries: 1, retry_delay: 5m}
`)
	r := b.trigger(t, "patient")
	b.execute(t, r, "a")
	if s := b.ti(t, r, "a").State; s != scheduler.TaskUpForRetry {
		t.Fatalf("a is %s; want up_for_retry", s)
	}
	b.clock.Add(4 * time.Minute)
	if rep, _ := b.eng.Tick(b.ctx); rep.Retried != 0 {
		t.Fatalf("retried before the delay passed")
	}
	b.clock.Add(2 * time.Minute)
	if rep, _ := b.eng.Tick(b.ctx); rep.Retried != 1 {
		t.Fatalf("tick after the delay retried %d; want 1 (%v)", rep.Retried, rep.Errors)
	}
	if ref := b.ref(t, r, "a"); ref.TryNumber != 2 {
		t.Fatalf("try %d; want 2", ref.TryNumber)
	}
}

func TestUnclaimedAttemptIsRepublishedWithItsID(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{RepublishAfter: 30 * time.Second})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	b.clock.Add(10 * time.Second)
	if rep, _ := b.eng.Tick(b.ctx); rep.Republished != 0 {
		t.Fatal("republished before the deadline")
	}
	b.clock.Add(30 * time.Second)
	rep, err := b.eng.Tick(b.ctx)
	if err != nil || rep.Republished != 1 {
		t.Fatalf("republished %d (%v); want 1", rep.Republished, err)
	}
	// Both the first publish and the republish carry the same attempt.
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var mu sync.Mutex
	var got []string
	_ = b.queue.Receive(ctx, psqueue.SubDispatch, 10, func(_ context.Context, data []byte) error {
		m, err := scheduler.DecodeTaskMessage(data)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.AttemptID)
		if len(got) == 2 {
			cancel()
		}
		return nil
	})
	if len(got) != 2 || got[0] != ref.AttemptID || got[1] != ref.AttemptID {
		t.Fatalf("published attempts %v; want %s twice", got, ref.AttemptID)
	}
	// Claiming it still works, once.
	b.execute(t, r, "a")
	if n := b.runs["a"].Load(); n != 1 {
		t.Fatalf("ran %d times", n)
	}
}

func TestRunningRunsKeepTheirVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	b.deploy(t, `id: chain
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
  - {id: z, type: test.ok, needs: [a]}
`)
	b.execute(t, r, "a")
	if s := b.ti(t, r, "b").State; s != scheduler.TaskQueued {
		t.Fatalf("old run's b is %s; want queued (the run keeps its version)", s)
	}
	r2, err := b.eng.Trigger(b.ctx, "chain", nil, b.clock.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.TaskInstance(b.ctx, r2.DagID, r2.RunID, "z"); err != nil {
		t.Fatalf("new run lacks the new version's task z: %v", err)
	}
	if _, err := b.eng.TaskInstance(b.ctx, r.DagID, r.RunID, "z"); !errors.Is(err, fsstore.ErrNotFound) {
		t.Fatalf("old run's task z: err = %v; want not found (its version has no z)", err)
	}
}

func TestBadMessagesAreDropped(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	for _, data := range []string{"not json", `{"dag_id":"x"}`, `{"dag_id":"x","run_id":"nope","task_id":"t","state":"success"}`} {
		err := b.eng.HandleEvent(b.ctx, []byte(data))
		if !errors.Is(err, scheduler.ErrBadMessage) {
			t.Errorf("event %q: err = %v; want a bad message", data, err)
		}
	}
	if n := b.eng.Stats.BadMessages.Load(); n != 3 {
		t.Fatalf("bad messages counted %d; want 3", n)
	}
	if _, err := b.eng.Claim(b.ctx, scheduler.AttemptRef{DagID: "x", RunID: "y", TaskID: "z", TryNumber: 1, AttemptID: "q"}, engine.Worker{Name: "w"}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("claim of an unknown task instance: %v; want ErrStale", err)
	}
}

func TestTriggerChecksConfAgainstParams(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: params
owner: owner@example.com
params: {region: asia, limit: 10}
tasks:
  - {id: a, type: test.ok}
`)
	for _, conf := range []map[string]any{{"regoin": "eu"}, {"limit": "ten"}} {
		if _, err := b.eng.Trigger(b.ctx, "params", conf, b.clock.Now()); err == nil {
			t.Errorf("conf %v accepted; want an error", conf)
		}
	}
	if runs, _ := b.store.ListRuns(b.ctx, "params", 10); len(runs) != 0 {
		t.Fatalf("a rejected conf created runs: %v", runIDs(runs))
	}
	if _, err := b.eng.Trigger(b.ctx, "params", map[string]any{"region": "eu"}, b.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.Trigger(b.ctx, "nope", nil, b.clock.Now()); err == nil {
		t.Fatal("triggering an unknown DAG worked")
	}
}

func TestLateResultAfterLostWorkerDoesNotStand(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, `id: late
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 1, retry_delay: 0s}
`)
	r := b.trigger(t, "late")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "slow", ExecutorRef: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(2 * time.Minute) // the lease expires; no executor knows "nowhere"
	rep, err := b.eng.Tick(b.ctx)
	if err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: lost %d (%v %v); want 1", rep.LostWorkers, err, rep.Errors)
	}
	err = claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess})
	if !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result: %v; want ErrStale", err)
	}
	a, _ := b.store.GetAttempt(b.ctx, ref)
	if a.Rec.State != scheduler.AttemptLost {
		t.Fatalf("attempt is %s; want lost (one outcome stands)", a.Rec.State)
	}
	next := b.ref(t, r, "a")
	if next.TryNumber != 2 {
		t.Fatalf("after the lost worker: try %d; want the retry queued", next.TryNumber)
	}
}

func TestResultBeforeLeaseCheckIsNeverLost(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w", ExecutorRef: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(2 * time.Minute)
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	rep, err := b.eng.Tick(b.ctx)
	if err != nil || rep.LostWorkers != 0 {
		t.Fatalf("tick marked %d lost (%v); a task that recorded its result is never lost", rep.LostWorkers, err)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s", s)
	}
}

func TestWorkerDyingAfterItsResultLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{RepublishAfter: 30 * time.Second})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	// The worker records its result on the attempt and dies before touching the task
	// instance: simulate by writing only the attempt, as Finish's first step does.
	if err := b.eng.RecordOnly(b.ctx, claim, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskRunning {
		t.Fatalf("a is %s; want still running", s)
	}
	b.clock.Add(31 * time.Second)
	rep, err := b.eng.Tick(b.ctx)
	if err != nil || rep.FollowedUp != 1 {
		t.Fatalf("tick followed up %d (%v %v); want 1", rep.FollowedUp, err, rep.Errors)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s; want success", s)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskQueued {
		t.Fatalf("b is %s; want queued by the follow-up", s)
	}
}

// The tick declared a worker lost and died before it moved the instance on: the lost verdict
// is on the attempt, the instance still runs it. The worker's late result (written with the
// instance's transition, in one write) must not stand over the verdict; the tick's next
// look applies the verdict, and the retry runs.
func TestLateResultAfterAHalfDoneLostVerdictDoesNotStand(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, `id: half
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 1, retry_delay: 0s}
`)
	r := b.trigger(t, "half")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "slow", ExecutorRef: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.store.GetTaskInstance(b.ctx, ref.DagID, ref.RunID, ref.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	now := b.clock.Now()
	if _, err := b.store.RecordResult(b.ctx, ref, v.UpdateTime, fsstore.AttemptResult{
		State: scheduler.AttemptLost, Error: "lost worker: test", EndedAt: now, FollowUpAt: &now,
	}); err != nil {
		t.Fatal(err)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result over a lost verdict: %v; want ErrStale", err)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskRunning || ti.Attempt.State != scheduler.AttemptLost {
		t.Fatalf("instance %s, attempt %s; want still running with the lost verdict", ti.State, ti.Attempt.State)
	}
	b.clock.Add(time.Second)
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if next := b.ref(t, r, "a"); next.TryNumber != 2 || next.AttemptID == ref.AttemptID {
		t.Fatalf("after the tick: try %d, attempt %s; want the retry queued", next.TryNumber, next.AttemptID)
	}
}

// A task cleared while its attempt runs: the worker's result does not stand (the instance is
// queued for a new attempt), the old attempt keeps its result for the record, and the new
// claim moves it to the instance's past attempts.
func TestResultOfAClearedAttemptIsKeptButDoesNotStand(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: cleared
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
`)
	r := b.trigger(t, "cleared")
	first := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, first, engine.Worker{Name: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("result of a cleared attempt: %v; want ErrStale", err)
	}
	ti := b.ti(t, r, "a")
	if ti.State != scheduler.TaskQueued || ti.AttemptID == first.AttemptID {
		t.Fatalf("instance %s with attempt %s; want queued for a new attempt", ti.State, ti.AttemptID)
	}
	b.execute(t, r, "a")
	as, err := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, "a")
	if err != nil || len(as) != 2 || as[0].Rec.ID != first.AttemptID || as[0].Rec.State != scheduler.AttemptSuccess ||
		as[1].Rec.State != scheduler.AttemptSuccess {
		t.Fatalf("attempts %+v (%v); want the cleared one (its result kept) then the new one", as, err)
	}
	if st := b.runState(t, r); st != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", st)
	}
}
