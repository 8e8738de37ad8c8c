package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Task instances are created by their first transition: a task that has not left `none` has
// no document, and every reader takes a missing one for `none`.

// exists reports whether a task instance has a document.
func (b *bundle) exists(t *testing.T, r *scheduler.Run, task string) bool {
	t.Helper()
	_, err := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, task)
	if err != nil && !errors.Is(err, fsstore.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// A starter that dies after moving the run to running and before queueing its roots leaves
// a running run with no task instance at all. Once its lease passes, the tick's sweep takes
// every task without a document for `none`: it queues the roots and completes the noops.
func TestSweepStartsARunWhoseStarterDiedBeforeItsRoots(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: bare
owner: owner@example.com
tasks:
  - {id: a, type: noop}
  - {id: b, type: noop, needs: [a]}
  - {id: done, type: test.ok, needs: [b]}
  - {id: e, type: test.ok}
`)
	r, err := b.eng.SubmitTrigger(b.ctx, "bare", nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	now := b.clock.Now()
	if _, err := b.store.UpdateRunIf(b.ctx, r, v.UpdateTime, map[string]any{
		"state": string(scheduler.RunRunning), "started_at": now, "tick_due_at": now.Add(-time.Second),
	}); err != nil {
		t.Fatal(err)
	}
	if rep := b.tick(t); rep.RunsSwept != 1 {
		t.Fatalf("tick swept %d runs; want 1", rep.RunsSwept)
	}
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": "success", "b": "success", "done": "queued", "e": "queued"})
	b.execute(t, r, "done")
	b.execute(t, r, "e")
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", s)
	}
}

// Tasks a failure cascades over are created directly in their final state, one write each,
// and the run finishes once every task of its DAG has a finished instance.
func TestCascadeCreatesUpstreamFailedTasksInOneWrite(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: falls
owner: owner@example.com
tasks:
  - {id: a, type: test.fail}
  - {id: b, type: test.ok, needs: [a]}
  - {id: c, type: test.ok, needs: [b]}
  - {id: cleanup, type: noop, needs: [c], trigger_rule: all_done}
`)
	r := b.trigger(t, "falls")
	for _, id := range []string{"b", "c", "cleanup"} {
		if b.exists(t, r, id) {
			t.Fatalf("%s has a document before it left none", id)
		}
	}
	b.store.TrackWrites()
	b.execute(t, r, "a")
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": "failed", "b": "upstream_failed", "c": "upstream_failed", "cleanup": "success"})
	per := b.store.WritesPerDoc()
	for _, id := range []string{"b", "c", "cleanup"} {
		if n := per["task_instances/"+scheduler.TaskKey(r.DagID, r.RunID, id)]; n != 1 {
			t.Errorf("%s written %d times; want once, created in its final state", id, n)
		}
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", s)
	}
}

// Clearing a task that never started writes nothing (it is `none` already); marking one
// creates it in the marked state, and its downstream follows.
func TestClearAndMarkOfATaskNotStarted(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chainDAG("chain"))
	r := b.trigger(t, "chain")
	cleared, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"c"}, false, false)
	if err != nil || len(cleared) != 0 {
		t.Fatalf("clear of a task not started: cleared %v, %v; want nothing", cleared, err)
	}
	if b.exists(t, r, "c") {
		t.Fatal("clearing a task not started created its instance")
	}
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "c", scheduler.TaskFailed); err != nil {
		t.Fatal(err)
	}
	b.wantStates(t, r, map[string]scheduler.TaskState{"a": "queued", "b": "none", "c": "failed", "d": "upstream_failed", "e": "upstream_failed"})
	if ti := b.ti(t, r, "c"); ti.Type != "test.ok" || ti.MaxTries != 1 || len(ti.Downstream) != 1 || ti.Downstream[0] != "d" {
		t.Fatalf("marked instance: type %q, max_tries %d, downstream %v; want its task's", ti.Type, ti.MaxTries, ti.Downstream)
	}
	if b.exists(t, r, "b") {
		t.Fatal("b has a document; nothing moved it from none")
	}
	if _, err := b.eng.TaskInstance(b.ctx, r.DagID, r.RunID, "nope"); !errors.Is(err, fsstore.ErrNotFound) {
		t.Fatalf("a task the DAG does not have: err = %v; want not found", err)
	}
}

// A run is finished only when every task of its DAG has a finished instance: an expanded
// for_each task and its instances, all finished, are as many documents as the DAG has
// tasks, but the task after them, with no document yet, keeps the run running.
func TestRunWithATaskNotStartedIsNotFinished(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	items(b)
	b.deploy(t, `id: fe
owner: owner@example.com
params: {tables: [a, b]}
tasks:
  - {id: copy, type: test.item, for_each: '{{ .params.tables }}', with: {x: '{{ .item }}'}}
  - {id: done, type: test.ok, needs: [copy]}
`)
	r, err := b.eng.SubmitTrigger(b.ctx, "fe", nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	now := b.clock.Now()
	if _, err := b.store.UpdateRunIf(b.ctx, r, v.UpdateTime, map[string]any{"state": string(scheduler.RunRunning), "started_at": now}); err != nil {
		t.Fatal(err)
	}
	ok := func(id string, down []string) *scheduler.TaskInstance {
		return &scheduler.TaskInstance{DagID: r.DagID, RunID: r.RunID, RunKey: r.Key(), TaskID: id, Type: "test.item",
			State: scheduler.TaskSuccess, Finished: 1, CSuccess: 1, MaxTries: 1, Downstream: down, ExpireAt: now.Add(time.Hour)}
	}
	parent := ok("copy", []string{"done"})
	two, zero, one := 2, 0, 1
	parent.MapCount = &two
	kids := []*scheduler.TaskInstance{ok("copy[0]", []string{scheduler.MapMarker("copy")}), ok("copy[1]", []string{scheduler.MapMarker("copy")})}
	kids[0].MapIndex, kids[1].MapIndex = &zero, &one
	if err := b.store.CreateTaskInstances(b.ctx, append(kids, parent)); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.SettleRun(b.ctx, r.DagID, r.RunID); err != nil {
		t.Fatal(err)
	}
	if s := b.runState(t, r); s != scheduler.RunRunning {
		t.Fatalf("run is %s with done not started; want running", s)
	}
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "done", scheduler.TaskSuccess); err != nil {
		t.Fatal(err)
	}
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s once done is marked success; want success", s)
	}
}
