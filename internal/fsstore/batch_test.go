package fsstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// UpdateTaskInstancesIf is one atomic commit: when one instance changed since it was read,
// none of the batch is written; with current versions, all of it is.
func TestUpdateTaskInstancesIfIsAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ids := []string{"a", "b", "c"}
	var tis []*scheduler.TaskInstance
	for _, id := range ids {
		tis = append(tis, b.ti(r, id, scheduler.TaskScheduled))
	}
	must(t, "create", b.st.CreateTaskInstances(b.ctx, tis))
	got, err := b.st.GetTaskInstances(b.ctx, r.DagID, r.RunID, append(ids, "missing"))
	must(t, "get instances", err)
	if _, ok := got["missing"]; ok || len(got) != 3 {
		t.Fatalf("GetTaskInstances returned %d instances (missing present: %v); want the 3 that exist", len(got), ok)
	}
	// Someone else changes b after our read.
	_, err = b.st.UpdateTaskInstanceIf(b.ctx, tis[1], got["b"].UpdateTime, map[string]any{"error": "theirs"})
	must(t, "the other writer", err)

	batch := func(got map[string]*fsstore.Versioned[scheduler.TaskInstance], v string) []fsstore.TaskInstanceUpdate {
		var ups []fsstore.TaskInstanceUpdate
		for i, id := range ids {
			ups = append(ups, fsstore.TaskInstanceUpdate{TI: tis[i], UpdateTime: got[id].UpdateTime, Fields: map[string]any{"error": v}})
		}
		return ups
	}
	mustIs(t, "batch with one stale version", b.st.UpdateTaskInstancesIf(b.ctx, batch(got, "ours")), fsstore.ErrConflict)
	now, err := b.st.GetTaskInstances(b.ctx, r.DagID, r.RunID, ids)
	must(t, "re-read", err)
	for _, id := range ids {
		want := ""
		if id == "b" {
			want = "theirs"
		}
		if now[id].Rec.Error != want {
			t.Fatalf("after a refused batch, %s holds %q; want %q (no part of the batch written)", id, now[id].Rec.Error, want)
		}
	}
	must(t, "batch with current versions", b.st.UpdateTaskInstancesIf(b.ctx, batch(now, "ours")))
	now, _ = b.st.GetTaskInstances(b.ctx, r.DagID, r.RunID, ids)
	for _, id := range ids {
		if now[id].Rec.Error != "ours" {
			t.Fatalf("after the batch, %s holds %q; want ours", id, now[id].Rec.Error)
		}
	}
	must(t, "empty batch", b.st.UpdateTaskInstancesIf(b.ctx, nil))
}

// A batch over Firestore's bound is refused before anything is sent, saying the bound.
func TestBatchesOverTheBoundAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ups := make([]fsstore.TaskInstanceUpdate, fsstore.MaxBatch+1)
	dups := make([]fsstore.DAGUpdate, fsstore.MaxBatch+1)
	for i := range ups {
		ups[i] = fsstore.TaskInstanceUpdate{TI: b.ti(r, fmt.Sprint("t", i), scheduler.TaskNone), UpdateTime: b.clock, Fields: map[string]any{"error": "x"}}
		dups[i] = fsstore.DAGUpdate{DagID: fmt.Sprint("d", i), UpdateTime: b.clock, Fields: map[string]any{"owner": "x"}}
	}
	for name, err := range map[string]error{
		"UpdateTaskInstancesIf": b.st.UpdateTaskInstancesIf(b.ctx, ups),
		"UpdateDAGsIf":          b.st.UpdateDAGsIf(b.ctx, dups),
	} {
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(fsstore.MaxBatch)) {
			t.Errorf("%s of %d updates: err = %v; want a refusal naming the bound %d", name, fsstore.MaxBatch+1, err, fsstore.MaxBatch)
		}
	}
}

// UpdateDAGsIf is one atomic commit too.
func TestUpdateDAGsIfIsAllOrNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	read := map[string]time.Time{}
	for _, id := range []string{"x", "y"} {
		must(t, "create "+id, b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: id}))
		v, err := b.st.GetDAG(b.ctx, id)
		must(t, "read "+id, err)
		read[id] = v.UpdateTime
	}
	ty, err := b.st.UpdateDAGIf(b.ctx, "y", read["y"], map[string]any{"owner": "theirs"})
	must(t, "the other writer", err)
	ups := func(ty time.Time) []fsstore.DAGUpdate {
		return []fsstore.DAGUpdate{
			{DagID: "x", UpdateTime: read["x"], Fields: map[string]any{"owner": "ours"}},
			{DagID: "y", UpdateTime: ty, Fields: map[string]any{"owner": "ours"}},
		}
	}
	mustIs(t, "batch with y stale", b.st.UpdateDAGsIf(b.ctx, ups(read["y"])), fsstore.ErrConflict)
	if v, _ := b.st.GetDAG(b.ctx, "x"); v.Rec.Owner != "" {
		t.Fatalf("x holds %q after a refused batch; want it unchanged", v.Rec.Owner)
	}
	must(t, "batch with current versions", b.st.UpdateDAGsIf(b.ctx, ups(ty)))
	for _, id := range []string{"x", "y"} {
		if v, _ := b.st.GetDAG(b.ctx, id); v.Rec.Owner != "ours" {
			t.Fatalf("%s holds %q; want ours", id, v.Rec.Owner)
		}
	}
}

// Creating a run's task instances completes what a dead creator left half-done: the
// instances that exist are kept as they are (someone may have advanced them), the missing
// ones are created (a for_each expansion's instances, made by whoever expands it).
func TestCreateTaskInstancesKeepsThoseThatExist(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, create := range map[string]func([]*scheduler.TaskInstance) error{
		"Bulk": func(tis []*scheduler.TaskInstance) error { return b.st.CreateTaskInstances(b.ctx, tis) },
	} {
		r := b.run("dag"+strings.ToLower(name), b.clock, scheduler.RunQueued)
		all := []*scheduler.TaskInstance{b.ti(r, "a", scheduler.TaskNone), b.ti(r, "b", scheduler.TaskNone), b.ti(r, "c", scheduler.TaskNone)}
		// A fresh run: every instance is created.
		fresh := b.run("fresh"+strings.ToLower(name), b.clock, scheduler.RunQueued)
		must(t, name+" fresh", create([]*scheduler.TaskInstance{b.ti(fresh, "a", scheduler.TaskNone), b.ti(fresh, "b", scheduler.TaskNone)}))
		if n, _, _, err := b.st.RunProgress(b.ctx, fresh.Key()); err != nil || n != 2 {
			t.Fatalf("%s: fresh run has %d instances (%v); want 2", name, n, err)
		}
		// The creator died after b; b was advanced since.
		must(t, name+" first half", create(all[1:2]))
		v, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "b")
		must(t, "read b", err)
		_, err = b.st.UpdateTaskInstanceIf(b.ctx, all[1], v.UpdateTime, fsstore.StateFields(scheduler.TaskQueued))
		must(t, "advance b", err)

		must(t, name+" completing", create(all))
		got, err := b.st.GetTaskInstances(b.ctx, r.DagID, r.RunID, []string{"a", "b", "c"})
		must(t, "read all", err)
		if len(got) != 3 {
			t.Fatalf("%s: %d instances after completing; want 3", name, len(got))
		}
		if s := got["b"].Rec.State; s != scheduler.TaskQueued {
			t.Fatalf("%s: b is %s after completing; want queued kept (not overwritten)", name, s)
		}
	}
}

// CreateRunsAtOnce returns each new run's version, in order, and a zero time for a run that
// was already there, which it leaves as it was.
func TestCreateRunsAtOnceReportsWhichRunsExisted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs []*scheduler.Run
	for i := range 3 {
		runs = append(runs, b.run("d", b.clock.Add(time.Duration(i)*time.Hour), scheduler.RunQueued))
	}
	pre := *runs[1]
	pre.Conf = "theirs"
	must(t, "another tick's run", b.st.CreateRun(b.ctx, &pre))

	times, err := b.st.CreateRunsAtOnce(b.ctx, runs)
	must(t, "create runs", err)
	if len(times) != 3 {
		t.Fatalf("%d update times; want 3", len(times))
	}
	for i, r := range runs {
		v, err := b.st.GetRun(b.ctx, r.DagID, r.RunID)
		must(t, "read run", err)
		switch {
		case i == 1 && !times[i].IsZero():
			t.Fatalf("run that existed got update time %v; want zero", times[i])
		case i == 1 && v.Rec.Conf != "theirs":
			t.Fatalf("run that existed holds conf %q; want theirs kept", v.Rec.Conf)
		case i != 1 && !times[i].Equal(v.UpdateTime):
			t.Fatalf("run %d: returned %v, document's version %v", i, times[i], v.UpdateTime)
		}
	}
	// All new: one commit, every time returned.
	more := []*scheduler.Run{b.run("e", b.clock, scheduler.RunQueued), b.run("e", b.clock.Add(time.Hour), scheduler.RunQueued)}
	times, err = b.st.CreateRunsAtOnce(b.ctx, more)
	must(t, "create new runs", err)
	for i, r := range more {
		v, err := b.st.GetRun(b.ctx, r.DagID, r.RunID)
		must(t, "read new run", err)
		if !times[i].Equal(v.UpdateTime) {
			t.Fatalf("new run %d: returned %v, document's version %v", i, times[i], v.UpdateTime)
		}
	}
}
