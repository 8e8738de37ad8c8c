package fsstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// CountActiveRuns counts one DAG's queued and running runs and nothing else: not its
// finished runs, not another DAG's.
func TestCountActiveRunsCountsQueuedAndRunningOfOneDAG(t *testing.T) {
	t.Parallel()
	b := setup(t)
	states := []scheduler.RunState{scheduler.RunQueued, scheduler.RunRunning, scheduler.RunRunning, scheduler.RunSuccess, scheduler.RunFailed}
	for i, s := range states {
		must(t, "run", b.st.CreateRun(b.ctx, b.run("d", b.clock.Add(time.Duration(i)*time.Hour), s)))
	}
	must(t, "other DAG's run", b.st.CreateRun(b.ctx, b.run("e", b.clock, scheduler.RunRunning)))
	n, err := b.st.CountActiveRuns(b.ctx, "d")
	must(t, "count", err)
	if n != 3 {
		t.Fatalf("CountActiveRuns = %d; want 3 (1 queued + 2 running)", n)
	}
	// The count follows a state change.
	r := b.run("d", b.clock, scheduler.RunQueued)
	v, err := b.st.GetRun(b.ctx, "d", r.RunID)
	must(t, "read", err)
	_, err = b.st.UpdateRunIf(b.ctx, r, v.UpdateTime, map[string]any{"state": string(scheduler.RunSuccess)})
	must(t, "finish", err)
	if n, _ := b.st.CountActiveRuns(b.ctx, "d"); n != 2 {
		t.Fatalf("CountActiveRuns after one finished = %d; want 2", n)
	}
	if n, _ := b.st.CountActiveRuns(b.ctx, "nope"); n != 0 {
		t.Fatalf("CountActiveRuns of a DAG with no runs = %d; want 0", n)
	}
}

// CountBackfillRuns counts the runs of one backfill (by its runs key) in the given states.
func TestCountBackfillRunsFiltersByBackfillAndState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, x := range []struct {
		bf string
		s  scheduler.RunState
	}{{"bf", scheduler.RunSuccess}, {"bf", scheduler.RunFailed}, {"bf", scheduler.RunRunning}, {"bf#2", scheduler.RunSuccess}, {"", scheduler.RunSuccess}} {
		r := b.run("d", b.clock.Add(time.Duration(i)*time.Hour), x.s)
		r.BackfillID = x.bf
		must(t, "run", b.st.CreateRun(b.ctx, r))
	}
	fin := []string{string(scheduler.RunSuccess), string(scheduler.RunFailed)}
	for _, c := range []struct {
		bf     string
		states []string
		want   int
	}{{"bf", fin, 2}, {"bf", []string{string(scheduler.RunRunning)}, 1}, {"bf#2", fin, 1}, {"bf3", fin, 0}} {
		n, err := b.st.CountBackfillRuns(b.ctx, c.bf, c.states)
		must(t, "count", err)
		if n != c.want {
			t.Errorf("CountBackfillRuns(%s, %v) = %d; want %d", c.bf, c.states, n, c.want)
		}
	}
}

// The aggregations over a run's task instances (readiness, progress, slots) sum the counter
// fields the states set: only the run's instances, only those naming the task downstream.
func TestTaskInstanceAggregations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	other := b.run("d", b.clock.Add(time.Hour), scheduler.RunRunning)
	tis := []*scheduler.TaskInstance{
		b.ti(r, "u1", scheduler.TaskSuccess, "x"),
		b.ti(r, "u2", scheduler.TaskSuccess, "x", "y"),
		b.ti(r, "u3", scheduler.TaskFailed, "x"),
		b.ti(r, "u4", scheduler.TaskUpstreamFailed, "x"),
		b.ti(r, "u5", scheduler.TaskSkipped, "x"),
		b.ti(r, "u6", scheduler.TaskRunning, "x"),
		b.ti(r, "u7", scheduler.TaskQueued, "y"),
		b.ti(r, "u8", scheduler.TaskScheduled, "x"),
		b.ti(r, "x", scheduler.TaskNone),
		b.ti(other, "o1", scheduler.TaskFailed, "x"), // another run's
		b.ti(other, "o2", scheduler.TaskRunning),
	}
	must(t, "create", b.st.CreateTaskInstances(b.ctx, tis))

	up, err := b.st.CountUpstream(b.ctx, r.Key(), "x")
	must(t, "count upstream", err)
	want := scheduler.UpstreamCounts{Done: 5, Success: 2, Failed: 1, UpstreamFailed: 1, Skipped: 1}
	if up != want {
		t.Fatalf("CountUpstream(x) = %+v; want %+v", up, want)
	}
	if up, _ := b.st.CountUpstream(b.ctx, r.Key(), "nobody"); up != (scheduler.UpstreamCounts{}) {
		t.Fatalf("CountUpstream of a task with no upstream = %+v; want zeros", up)
	}

	total, finished, bad, err := b.st.RunProgress(b.ctx, r.Key())
	must(t, "progress", err)
	if total != 9 || finished != 5 || bad != 2 {
		t.Fatalf("RunProgress = %d total, %d finished, %d bad; want 9, 5, 2", total, finished, bad)
	}
	active, err := b.st.CountActiveTasks(b.ctx, r.Key())
	must(t, "active tasks", err)
	if active != 2 {
		t.Fatalf("CountActiveTasks = %d; want 2 (u6 running, u7 queued)", active)
	}

	// The counts follow a state move written with StateFields.
	v, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "u6")
	must(t, "read u6", err)
	_, err = b.st.UpdateTaskInstanceIf(b.ctx, tis[5], v.UpdateTime, fsstore.StateFields(scheduler.TaskFailed))
	must(t, "fail u6", err)
	up, _ = b.st.CountUpstream(b.ctx, r.Key(), "x")
	if up.Done != 6 || up.Failed != 2 {
		t.Fatalf("CountUpstream after u6 failed = %+v; want Done 6, Failed 2", up)
	}
	if active, _ := b.st.CountActiveTasks(b.ctx, r.Key()); active != 1 {
		t.Fatalf("CountActiveTasks after u6 failed = %d; want 1", active)
	}
}

// ScheduledTasks reads a run's instances waiting for a slot, at most limit; MapInstances the
// instances of one for_each task; ListTaskInstances all of a run's.
func TestRunInstanceQueries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	other := b.run("d", b.clock.Add(time.Hour), scheduler.RunRunning)
	var tis []*scheduler.TaskInstance
	for i := range 4 {
		tis = append(tis, b.ti(r, fmt.Sprintf("s%d", i), scheduler.TaskScheduled))
	}
	for i := range 3 {
		ti := b.ti(r, fmt.Sprintf("copy[%d]", i), scheduler.TaskQueued, scheduler.MapMarker("copy"))
		ti.MapIndex = ptr(i)
		tis = append(tis, ti)
	}
	tis = append(tis, b.ti(r, "copy", scheduler.TaskRunning), b.ti(other, "s0", scheduler.TaskScheduled),
		b.ti(other, "copy[0]", scheduler.TaskQueued, scheduler.MapMarker("copy")))
	must(t, "create", b.st.CreateTaskInstances(b.ctx, tis))

	sched, err := b.st.ScheduledTasks(b.ctx, r.Key(), 3)
	must(t, "scheduled", err)
	if len(sched) != 3 {
		t.Fatalf("ScheduledTasks(limit 3) = %d; want 3", len(sched))
	}
	for _, s := range sched {
		if s.Rec.State != scheduler.TaskScheduled || s.Rec.RunKey != r.Key() {
			t.Fatalf("ScheduledTasks returned %s of %s in %s", s.Rec.TaskID, s.Rec.RunKey, s.Rec.State)
		}
	}
	if all, _ := b.st.ScheduledTasks(b.ctx, r.Key(), 10); len(all) != 4 {
		t.Fatalf("ScheduledTasks(limit 10) = %d; want 4", len(all))
	}
	kids, err := b.st.MapInstances(b.ctx, r.Key(), "copy")
	must(t, "map instances", err)
	if len(kids) != 3 {
		t.Fatalf("MapInstances = %d; want the 3 instances of copy in this run", len(kids))
	}
	list, err := b.st.ListTaskInstances(b.ctx, r.DagID, r.RunID)
	must(t, "list", err)
	if len(list) != 8 {
		t.Fatalf("ListTaskInstances = %d; want 8", len(list))
	}
	grid, err := b.st.GridInstances(b.ctx, []string{r.Key()})
	must(t, "grid", err)
	if len(grid) != 5 {
		t.Fatalf("GridInstances = %d; want the 5 that are not for_each instances", len(grid))
	}
}
