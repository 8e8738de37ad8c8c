package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// noopChain is a DAG of n noop tasks in a chain, then the test.ok task "done".
func noopChain(id string, n int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "id: %s\nowner: owner@example.com\nmax_active_tasks: 16\ntasks:\n", id)
	for i := range n {
		needs := ""
		if i > 0 {
			needs = fmt.Sprintf(", needs: [n%04d]", i-1)
		}
		fmt.Fprintf(&sb, "  - {id: n%04d, type: noop%s}\n", i, needs)
	}
	fmt.Fprintf(&sb, "  - {id: done, type: test.ok, needs: [n%04d]}\n", n-1)
	return sb.String()
}

func (b *bundle) wantAll(t *testing.T, r *scheduler.Run, want scheduler.TaskState, except string) {
	t.Helper()
	rv, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	tis, err := b.eng.RunInstances(b.ctx, rv.Rec) // with a `none` one for each task not started
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if ti.Rec.TaskID != except && ti.Rec.State != want {
			t.Fatalf("task %s is %s; want every task %s", ti.Rec.TaskID, ti.Rec.State, want)
		}
	}
}

// A starter that dies mid-cascade (its context cancelled while it completes a long noop
// chain) leaves a lease on the run; once it passes, the tick sweeps the run and finishes the
// chain: every task succeeds, and the task after the chain runs once.
func TestStarterCancelledMidCascadeCompletesAtTheTick(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{StartGrace: 30 * time.Second})
	b.deploy(t, noopChain("chain", 600))
	for try := 0; ; try++ {
		if try == 8 {
			t.Fatal("the cancel never landed mid-cascade in 8 tries")
		}
		ctx, cancel := context.WithCancel(b.ctx)
		at := b.clock.Now().Add(time.Duration(try) * time.Second)
		type result struct {
			r   *scheduler.Run
			err error
		}
		got := make(chan result, 1)
		go func() {
			r, err := b.eng.Trigger(ctx, "chain", nil, at)
			got <- result{r, err}
		}()
		runID := scheduler.RunID(scheduler.RunManual, at)
		// Cancel as soon as the run is running: its cascade has just begun.
		for deadline := time.Now().Add(20 * time.Second); ; {
			if v, err := b.store.GetRun(b.ctx, "chain", runID); err == nil && v.Rec.State != scheduler.RunQueued {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the run never started")
			}
		}
		cancel()
		res := <-got
		r := &scheduler.Run{DagID: "chain", RunID: runID}
		if res.err == nil && b.runState(t, r) != scheduler.RunRunning {
			continue // the cascade finished before the cancel: try again
		}
		if st := b.state(t, r, "done"); st != scheduler.TaskNone {
			continue
		}
		if !errors.Is(res.err, context.Canceled) && res.err != nil && !strings.Contains(res.err.Error(), "context canceled") && !strings.Contains(res.err.Error(), "Canceled") {
			t.Fatalf("trigger: %v", res.err)
		}
		// Before the lease passes the tick leaves the run to its starter.
		b.tick(t)
		if st := b.state(t, r, "done"); st != scheduler.TaskNone {
			t.Fatalf("the tick swept a run whose lease had not passed (done is %s)", st)
		}
		b.clock.Add(31 * time.Second)
		rep := b.tick(t)
		if rep.RunsSwept != 1 {
			t.Fatalf("tick swept %d runs; want 1", rep.RunsSwept)
		}
		b.wantAll(t, r, scheduler.TaskSuccess, "done")
		b.execute(t, r, "done")
		if st := b.runState(t, r); st != scheduler.RunSuccess {
			t.Fatalf("run %s; want success", st)
		}
		if n := b.runs["done"].Load(); n != 1 {
			t.Fatalf("done ran %d times; want once", n)
		}
		return
	}
}

// The safety net, from the state a dead cascade leaves: a running run whose lease passed,
// with a finished task whose downstream is still none. The tick finds it by its due time
// and advances it.
func TestTickSweepsARunLeftWithNoneTasksWhoseUpstreamFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: left
owner: owner@example.com
tasks:
  - {id: a, type: noop}
  - {id: b, type: noop, needs: [a]}
  - {id: c, type: noop, needs: [b]}
  - {id: done, type: test.ok, needs: [c]}
  - {id: e, type: test.ok}
`)
	at := b.clock.Now()
	r, err := b.eng.SubmitTrigger(b.ctx, "left", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	// Make the state directly: running, a success, the rest none, the lease passed.
	now := b.clock.Now()
	mk := func(id string, down []string, st scheduler.TaskState) *scheduler.TaskInstance {
		ti := &scheduler.TaskInstance{DagID: r.DagID, RunID: r.RunID, RunKey: r.Key(), TaskID: id, Type: "noop", State: st,
			MaxTries: 1, Downstream: down, ExpireAt: now.Add(time.Hour)}
		if st == scheduler.TaskSuccess {
			ti.Finished, ti.CSuccess = 1, 1
		}
		return ti
	}
	if err := b.store.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{
		mk("a", []string{"b"}, scheduler.TaskSuccess), mk("b", []string{"c"}, scheduler.TaskNone),
		mk("c", []string{"done"}, scheduler.TaskNone), mk("done", []string{}, scheduler.TaskNone), mk("e", []string{}, scheduler.TaskNone),
	}); err != nil {
		t.Fatal(err)
	}
	v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.UpdateRunIf(b.ctx, r, v.UpdateTime, map[string]any{
		"state": string(scheduler.RunRunning), "started_at": now, "tick_due_at": now.Add(-time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	rep := b.tick(t)
	if rep.RunsSwept != 1 {
		t.Fatalf("tick swept %d runs; want 1", rep.RunsSwept)
	}
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": scheduler.TaskSuccess, "b": scheduler.TaskSuccess, "c": scheduler.TaskSuccess,
		"done": scheduler.TaskQueued, "e": scheduler.TaskQueued})
	if v, _ := b.store.GetRun(b.ctx, r.DagID, r.RunID); v.Rec.TickDueAt != nil {
		t.Fatalf("the swept run is still due at %v; the next tick would sweep it again", v.Rec.TickDueAt)
	}
	b.drive(t, r)
	if st := b.runState(t, r); st != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", st)
	}
}

// A submitted run is started by the advancer (its start event), not by the caller; a lost
// start event is made up by the tick after the start grace.
func TestSubmittedRunStartsFromItsEventOrTheTick(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{StartGrace: 10 * time.Second})
	b.deploy(t, noopChain("chain", 50))
	r, err := b.eng.SubmitTrigger(b.ctx, "chain", nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st := b.runState(t, r); st != scheduler.RunQueued {
		t.Fatalf("submitted run is %s; want queued until the advancer starts it", st)
	}
	ev := fmt.Sprintf(`{"dag_id":%q,"run_id":%q,"task_id":%q,"start_run":true}`, r.DagID, r.RunID, scheduler.RunStartTask)
	if err := b.eng.HandleEvent(b.ctx, []byte(ev)); err != nil {
		t.Fatal(err)
	}
	b.wantAll(t, r, scheduler.TaskSuccess, "done")
	if st := b.state(t, r, "done"); st != scheduler.TaskQueued {
		t.Fatalf("done is %s; want queued", st)
	}
	// Its start event lost: the tick starts it once the grace passes.
	r2, err := b.eng.SubmitTrigger(b.ctx, "chain", nil, b.clock.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b.tick(t)
	if st := b.runState(t, r2); st != scheduler.RunQueued {
		t.Fatalf("run %s before its start grace; want queued", st)
	}
	b.clock.Add(11 * time.Second)
	b.tick(t)
	b.wantAll(t, r2, scheduler.TaskSuccess, "done")
}

// With catchup, a tick that fell behind by several intervals creates each of them once,
// for every due DAG, however many ticks run at once.
func TestCatchupTickBehindCreatesEveryIntervalOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{TickBatch: 7}) // several pages of due DAGs
	const dags, behind = 20, 5
	for i := range dags {
		b.deploy(t, fmt.Sprintf(`id: hourly_%02d
owner: owner@example.com
schedule: "0 * * * *"
start: 2025-01-10T00:00:00Z
catchup: true
max_active_runs: 50
tasks:
  - {id: only, type: noop}
`, i))
	}
	b.tick(t) // 00:30: nothing complete yet
	b.clock.Add(behind * time.Hour)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := b.eng.Tick(b.ctx); errs <- err }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range dags {
		runs, err := b.store.ListRuns(b.ctx, fmt.Sprintf("hourly_%02d", i), 50)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range runs {
			seen[r.Rec.RunID] = true
		}
		for h := range behind {
			id := scheduler.RunID(scheduler.RunScheduled, time.Date(2025, 1, 10, h, 0, 0, 0, time.UTC))
			if !seen[id] {
				t.Fatalf("hourly_%02d lacks %s: %v", i, id, runIDs(runs))
			}
		}
		if len(runs) != behind {
			t.Fatalf("hourly_%02d has %d runs; want %d: %v", i, len(runs), behind, runIDs(runs))
		}
	}
	if got := b.eng.Stats.RunsCreated.Load(); got != dags*behind {
		t.Fatalf("runs created %d; want %d", got, dags*behind)
	}
	if got := b.eng.Stats.SkippedIntervals.Load(); got != 0 {
		t.Fatalf("catchup skipped %d intervals; want none", got)
	}
}

// Without catchup a late tick runs only the latest interval, and says what it skipped: a
// log line per DAG, the engine's counter, and a note on the DAG for the UI.
func TestSkippedIntervalsAreLoggedCountedAndNoted(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: hourly
owner: owner@example.com
schedule: "0 * * * *"
start: 2025-01-10T00:00:00Z
tasks:
  - {id: only, type: noop}
`)
	b.tick(t) // 00:30
	b.clock.Add(5 * time.Hour)
	rep := b.tick(t) // 05:30: [04:00, 05:00) runs; 00:00 … 03:00 are skipped
	if rep.RunsCreated != 1 || rep.SkippedIntervals != 4 || rep.LateDAGs != 1 {
		t.Fatalf("tick: created %d, skipped %d, late %d; want 1, 4, 1", rep.RunsCreated, rep.SkippedIntervals, rep.LateDAGs)
	}
	if got := b.eng.Stats.SkippedIntervals.Load(); got != 4 {
		t.Fatalf("skipped counter %d; want 4", got)
	}
	line := b.one(t, engine.LogEventIntervalsSkipped, map[string]any{"dag_id": "hourly"})
	if line["skipped"] != int64(4) {
		t.Fatalf("log line %v; want skipped=4", line)
	}
	d, err := b.store.GetDAG(b.ctx, "hourly")
	if err != nil {
		t.Fatal(err)
	}
	tl := d.Rec.TickLate
	if tl == nil || tl.Skipped != 4 || tl.SkippedFrom == nil || !tl.SkippedFrom.Equal(time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)) ||
		!tl.SkippedTo.Equal(time.Date(2025, 1, 10, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("tick_late = %+v; want 4 skipped, 00:00 to 03:00", tl)
	}
	b.clock.Add(time.Hour)
	if rep := b.tick(t); rep.SkippedIntervals != 0 || rep.LateDAGs != 0 {
		t.Fatalf("an on-time tick: skipped %d, late %d; want 0", rep.SkippedIntervals, rep.LateDAGs)
	}
}

// A dead letter's reason carries the error the dispatcher saw.
func TestDeadLetterReasonCarriesTheErrorSeen(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: dl
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
`)
	r := b.trigger(t, "dl")
	ref := b.ref(t, r, "a")
	b.eng.NoteDispatchError(b.ctx, ref, errors.New("worker job updraft-worker-small: permission denied"))
	msg := fmt.Sprintf(`{"dag_id":%q,"run_id":%q,"task_id":"a","try_number":%d,"attempt_id":%q,"type":"test.ok"}`, ref.DagID, ref.RunID, ref.TryNumber, ref.AttemptID)
	if err := b.eng.HandleDeadTask(b.ctx, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	ti := b.ti(t, r, "a")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "permission denied") || strings.Contains(ti.Error, "see the dispatcher's log") {
		t.Fatalf("task %s with reason %q; want failed with the error seen", ti.State, ti.Error)
	}
}

// A backfill started again once it ended counts only its own runs: its progress never
// reads more intervals done than it has.
func TestBackfillStartedAgainCountsTrue(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyOK)
	if err := b.eng.SetPaused(b.ctx, "daily", true); err != nil {
		t.Fatal(err)
	}
	req := engine.BackfillRequest{DagID: "daily", From: "2025-01-01", To: "2025-01-03"}
	run := func() *scheduler.Backfill {
		bf, _, err := b.eng.StartBackfill(b.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b.finishAll(t, "daily")
			b.tick(t)
		}
		v, err := b.store.GetBackfill(b.ctx, bf.ID)
		if err != nil {
			t.Fatal(err)
		}
		return &v.Rec
	}
	first := run()
	second := run()
	if second.State != scheduler.BackfillDone || second.Total != 3 || second.Skipped != 3 || second.Created != 0 {
		t.Fatalf("second start: %+v; want done, 3 skipped", second)
	}
	fin := []string{string(scheduler.RunSuccess), string(scheduler.RunFailed)}
	n1, _ := b.store.CountBackfillRuns(b.ctx, first.RunsKey(), fin)
	n2, _ := b.store.CountBackfillRuns(b.ctx, second.RunsKey(), fin)
	if n1 != 3 || n2 != 0 || second.Skipped+n2 > second.Total {
		t.Fatalf("finished runs: first start %d, second %d (skipped %d of %d); want 3 and 0", n1, n2, second.Skipped, second.Total)
	}
}

// A DAG deployed long after its start skips to the latest interval (catchup: false): the skip
// is logged and counted, but it is not a late tick, so the UI shows no "tick late".
func TestDeployAfterStartSkipsWithoutFlaggingALateTick(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: old
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
tasks:
  - {id: only, type: noop}
`)
	rep := b.tick(t) // 2025-01-10 00:30: runs Jan 9, skips Jan 1 … 8
	if rep.RunsCreated != 1 || rep.SkippedIntervals != 8 || rep.LateDAGs != 0 {
		t.Fatalf("tick: created %d, skipped %d, late %d; want 1, 8, 0", rep.RunsCreated, rep.SkippedIntervals, rep.LateDAGs)
	}
	if d, _ := b.store.GetDAG(b.ctx, "old"); d.Rec.TickLate != nil {
		t.Fatalf("tick_late = %+v after a deploy; want none", d.Rec.TickLate)
	}
	if line := b.one(t, engine.LogEventIntervalsSkipped, map[string]any{"dag_id": "old"}); !strings.Contains(line["msg"].(string), "deployed or unpaused") {
		t.Fatalf("log line %v; want it to say the deploy caused the skip", line)
	}
}
