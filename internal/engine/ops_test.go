package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// drive executes queued tasks until none is queued, the way workers would.
func (b *bundle) drive(t *testing.T, r *scheduler.Run) {
	t.Helper()
	for range 100 {
		tis, err := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		progressed := false
		for _, ti := range tis {
			if ti.Rec.State == scheduler.TaskQueued {
				b.execute(t, r, ti.Rec.TaskID)
				progressed = true
			}
		}
		if !progressed {
			return
		}
	}
	t.Fatal("tasks kept being queued")
}

func (b *bundle) wantStates(t *testing.T, r *scheduler.Run, want map[string]scheduler.TaskState) {
	t.Helper()
	for task, w := range want {
		if s := b.ti(t, r, task).State; s != w {
			t.Errorf("%s is %s; want %s", task, s, w)
		}
	}
}

func TestTriggerRulePatterns(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: patterns
owner: owner@example.com
tasks:
  - {id: extract, type: test.fail}
  - {id: load, type: test.ok, needs: [extract]}
  - {id: cleanup, type: test.ok, needs: [load], trigger_rule: all_done}
  - {id: alert, type: test.ok, needs: [extract, load], trigger_rule: one_failed}
  - {id: skip_me, type: test.skip}
  - {id: a, type: test.ok, needs: [skip_me]}
  - {id: b, type: test.ok}
  - {id: join, type: test.ok, needs: [a, b], trigger_rule: none_failed_min_one_success}
`)
	r := b.trigger(t, "patterns")
	b.drive(t, r)
	b.wantStates(t, r, map[string]scheduler.TaskState{
		"extract": "failed", "load": "upstream_failed",
		"cleanup": "success",                 // all_done runs after an upstream_failed
		"alert":   "success",                 // one_failed fires on the failure
		"skip_me": "skipped", "a": "skipped", // skips propagate through all_success
		"b": "success", "join": "success", // none_failed_min_one_success joins after a skip
	})
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed (a failed task fails the run even when cleanup succeeds)", s)
	}
}

func TestClearCountsTriesOnAndRestoresTheRetryBudget(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: clearme
owner: owner@example.com
tasks:
  - {id: a, type: test.fail, retries: 1, retry_delay: 0s}
  - {id: b, type: test.ok, needs: [a]}
  - {id: c, type: test.ok, needs: [b]}
`)
	r := b.trigger(t, "clearme")
	b.drive(t, r)
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": "failed", "b": "upstream_failed", "c": "upstream_failed"})
	if b.runState(t, r) != scheduler.RunFailed {
		t.Fatal("run should have failed")
	}
	cleared, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, true, false)
	if err != nil || strings.Join(cleared, ",") != "a,b,c" {
		t.Fatalf("cleared %v (%v); want a,b,c", cleared, err)
	}
	if s := b.runState(t, r); s != scheduler.RunRunning {
		t.Fatalf("run is %s after a clear; want running", s)
	}
	ref := b.ref(t, r, "a")
	if ref.TryNumber != 3 {
		t.Fatalf("try %d after a clear; want 3 (tries counted on)", ref.TryNumber)
	}
	// What the worker says ("try 3 of 4") counts the budget from the clear too.
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if n := claim.MaxTries(); n != 4 {
		t.Fatalf("claim's max tries %d after a clear; want 4", n)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptFailed, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	// a failed: the retry budget starts again, so try 4 is queued: the retry budget starts again, so try 4 is queued
	if ref := b.ref(t, r, "a"); ref.TryNumber != 4 {
		t.Fatalf("try %d; want 4 (one retry again after the clear)", ref.TryNumber)
	}
	if ti := b.ti(t, r, "a"); ti.MaxTries != 4 {
		t.Fatalf("max tries %d; want 4", ti.MaxTries)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, "nope", []string{"a"}, false, false); err == nil || !strings.Contains(err.Error(), "no run") {
		t.Fatalf("clear of a missing run: %v", err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"zz"}, false, false); err == nil || !strings.Contains(err.Error(), "no task") {
		t.Fatalf("clear of a missing task: %v", err)
	}
}

func TestMarkRefusesRunningTasksAndCascades(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "a", scheduler.TaskSuccess)
	if !errors.Is(err, engine.ErrTaskActive) {
		t.Fatalf("marking a queued task: %v; want it refused", err)
	}
	b.execute(t, r, "a")
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "b", scheduler.TaskFailed); !errors.Is(err, engine.ErrTaskActive) {
		t.Fatalf("marking queued b: %v", err)
	}
	b.execute(t, r, "b")
	b.execute(t, r, "c")
	if b.runState(t, r) != scheduler.RunSuccess {
		t.Fatal("run should succeed")
	}
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "c", scheduler.TaskFailed); err != nil {
		t.Fatal(err)
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s after marking c failed; want failed", s)
	}
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "c", "running"); err == nil {
		t.Fatal("marking running accepted")
	}
}

func TestMarkSuccessUnblocksDownstream(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: unblock
owner: owner@example.com
tasks:
  - {id: a, type: test.fail, retries: 1, retry_delay: 1h}
  - {id: b, type: test.ok, needs: [a]}
`)
	r := b.trigger(t, "unblock")
	b.execute(t, r, "a") // up_for_retry, waiting an hour
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "a", scheduler.TaskSuccess); err != nil {
		t.Fatal(err)
	}
	b.execute(t, r, "b")
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", s)
	}
	b.clock.Add(2 * time.Hour)
	if rep, _ := b.eng.Tick(b.ctx); rep.Retried != 0 {
		t.Fatal("a task marked success was retried later")
	}
}

func TestDagrunTimeoutFailsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Hour}) // the worker on b stays alive throughout
	b.deploy(t, `id: slow
owner: owner@example.com
dagrun_timeout: 10m
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok, needs: [a]}
  - {id: c, type: test.ok, needs: [b]}
`)
	r := b.trigger(t, "slow")
	b.execute(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "b"), engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(9 * time.Minute)
	if _, err := b.eng.Tick(b.ctx); err != nil || b.runState(t, r) != scheduler.RunRunning {
		t.Fatalf("timed out early: %v, run %s", err, b.runState(t, r))
	}
	b.clock.Add(2 * time.Minute)
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed by dagrun_timeout", s)
	}
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": "success", "b": "failed", "c": "skipped"})
	if ti := b.ti(t, r, "b"); !strings.Contains(ti.Error, "dagrun_timeout") {
		t.Fatalf("b's error %q", ti.Error)
	}
	// The worker still running b finds its result refused.
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result after the timeout: %v; want ErrStale", err)
	}
}

func TestPauseAndUnpauseWithoutCatchupRunsOnlyTheLatest(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyDAG("napper", "2025-01-01", false, 16))
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.SetPaused(b.ctx, "napper", true); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(5 * 24 * time.Hour)
	if rep, _ := b.eng.Tick(b.ctx); rep.RunsCreated != 0 {
		t.Fatalf("a paused DAG got %d runs", rep.RunsCreated)
	}
	if err := b.eng.SetPaused(b.ctx, "napper", false); err != nil {
		t.Fatal(err)
	}
	if rep, _ := b.eng.Tick(b.ctx); rep.RunsCreated != 1 {
		t.Fatalf("unpause made %d runs; want only the latest interval", rep.RunsCreated)
	}
	runs, _ := b.store.ListRuns(b.ctx, "napper", 10)
	if len(runs) != 2 || runs[0].Rec.RunID != "scheduled__2025-01-14T00:00:00Z" {
		t.Fatalf("runs %v; want Jan 9 and then Jan 14 only", runIDs(runs))
	}
	if err := b.eng.SetPaused(b.ctx, "nope", true); err == nil {
		t.Fatal("pausing an unknown DAG worked")
	}
}

func TestPruneDeactivatesGoneDAGsAndKeepsHistory(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyDAG("keep", "2025-01-01", false, 16))
	b.deploy(t, dailyDAG("gone", "2025-01-01", false, 16))
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	pruned, err := b.eng.Prune(b.ctx, map[string]bool{"keep": true})
	if err != nil || len(pruned) != 1 || pruned[0] != "gone" {
		t.Fatalf("pruned %v (%v)", pruned, err)
	}
	b.clock.Add(24 * time.Hour)
	if rep, _ := b.eng.Tick(b.ctx); rep.RunsCreated != 1 {
		t.Fatalf("after prune: %d runs created; want 1 (only keep)", rep.RunsCreated)
	}
	if runs, _ := b.store.ListRuns(b.ctx, "gone", 10); len(runs) != 1 {
		t.Fatalf("the pruned DAG's history: %v", runIDs(runs))
	}
	if _, err := b.eng.Trigger(b.ctx, "gone", nil, b.clock.Now()); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("triggering a removed DAG: %v", err)
	}
}

func TestDependsOnPastWaitsForThePreviousRunAndWakesAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: dop
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
catchup: true
max_active_runs: 3
tasks:
  - {id: a, type: test.fail, depends_on_past: true}
  - {id: b, type: test.ok, depends_on_past: true}
`)
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	runs, _ := b.store.ListRuns(b.ctx, "dop", 10)
	if len(runs) != 3 {
		t.Fatalf("runs %v", runIDs(runs))
	}
	r1, r2, r3 := &runs[2].Rec, &runs[1].Rec, &runs[0].Rec
	b.wantStates(t, r1, map[string]scheduler.TaskState{"a": "queued", "b": "queued"})
	b.wantStates(t, r2, map[string]scheduler.TaskState{"a": "none", "b": "none"})
	b.execute(t, r1, "b") // success: run 2's b is woken at once, no tick needed
	b.wantStates(t, r2, map[string]scheduler.TaskState{"b": "queued"})
	b.wantStates(t, r3, map[string]scheduler.TaskState{"b": "none"})
	b.execute(t, r1, "a") // failed: run 2's a stays waiting
	b.wantStates(t, r2, map[string]scheduler.TaskState{"a": "none"})
	if err := b.eng.MarkTask(b.ctx, r1.DagID, r1.RunID, "a", scheduler.TaskSuccess); err != nil {
		t.Fatal(err)
	}
	b.wantStates(t, r2, map[string]scheduler.TaskState{"a": "queued"})
}

func TestMaxActiveTasksHoldsTheRestInScheduled(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: narrow
owner: owner@example.com
max_active_tasks: 3
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok}
  - {id: c, type: test.ok}
  - {id: d, type: test.ok}
  - {id: e, type: test.ok}
  - {id: join, type: test.ok, needs: [a, b, c, d, e]}
`)
	r := b.trigger(t, "narrow")
	count := func() (queued, scheduled int) {
		tis, _ := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
		for _, ti := range tis {
			switch ti.Rec.State {
			case scheduler.TaskQueued, scheduler.TaskRunning:
				queued++
			case scheduler.TaskScheduled:
				scheduled++
			}
		}
		return
	}
	if q, s := count(); q != 3 || s != 2 {
		t.Fatalf("at start: %d queued, %d scheduled; want 3 and 2", q, s)
	}
	for i := 0; ; i++ {
		q, _ := count()
		if q > 3 {
			t.Fatalf("%d tasks active; max_active_tasks is 3", q)
		}
		if q == 0 || i > 10 {
			break
		}
		tis, _ := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
		for _, ti := range tis {
			if ti.Rec.State == scheduler.TaskQueued {
				b.execute(t, r, ti.Rec.TaskID)
				break // one at a time: each finish frees one slot
			}
		}
	}
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s", s)
	}
}
