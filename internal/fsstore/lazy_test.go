package fsstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// A task instance that has not left `none` has no document; the first transition written on
// it creates it. Each write path the engine guards (one transition, a batch, the downstream
// half of a finish commit) must: create the base record with the transition's fields on a
// zero update time, refuse a second create as a lost race (ErrConflict, not ErrExists, so
// the engine's re-read loops apply), and still refuse an update at a stale update time.
func TestFirstTransitionCreatesTheInstance(t *testing.T) {
	t.Parallel()
	b := setup(t)
	paths := []struct {
		name  string
		write func(v *fsstore.Versioned[scheduler.TaskInstance], tr scheduler.Transition) error
	}{
		{"ApplyTransitionOn", func(v *fsstore.Versioned[scheduler.TaskInstance], tr scheduler.Transition) error {
			_, err := b.st.ApplyTransitionOn(b.ctx, v, tr)
			return err
		}},
		{"UpdateTaskInstancesIf", func(v *fsstore.Versioned[scheduler.TaskInstance], tr scheduler.Transition) error {
			return b.st.UpdateTaskInstancesIf(b.ctx, []fsstore.TaskInstanceUpdate{{TI: &v.Rec, UpdateTime: v.UpdateTime, Fields: fsstore.TransitionFields(tr)}})
		}},
		{"CommitFinish", func(v *fsstore.Versioned[scheduler.TaskInstance], tr scheduler.Transition) error {
			// The upstream's instance with its attempt, fresh for each commit so only the
			// instance under test can conflict.
			up := b.ti(b.run(v.Rec.DagID, b.clock, scheduler.RunRunning), fmt.Sprintf("up-%d", time.Now().UnixNano()), scheduler.TaskRunning)
			if err := b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{up}); err != nil {
				return err
			}
			g, err := b.st.GetTaskInstance(b.ctx, up.DagID, up.RunID, up.TaskID)
			if err != nil {
				return err
			}
			a := b.attempt(up, "att-"+up.TaskID)
			at, err := b.st.ClaimAttempt(b.ctx, g.UpdateTime, scheduler.Transition{TaskID: up.TaskID, From: up.State, To: up.State}, a, nil)
			if err != nil {
				return err
			}
			ref := scheduler.AttemptRef{DagID: a.DagID, RunID: a.RunID, TaskID: a.TaskID, TryNumber: a.TryNumber, AttemptID: a.ID}
			self := scheduler.Transition{TaskID: up.TaskID, From: scheduler.TaskRunning, To: scheduler.TaskSuccess}
			return b.st.CommitFinish(b.ctx, ref, fsstore.AttemptResult{State: scheduler.AttemptSuccess, EndedAt: b.clock},
				[]fsstore.Guarded{{Transition: self, UpdateTime: at}, {Transition: tr, UpdateTime: v.UpdateTime, Base: &v.Rec}})
		}},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			r := b.run("lazy-"+p.name, b.clock, scheduler.RunRunning)
			base := b.ti(r, "load", scheduler.TaskNone, "report", "notify")
			base.Type, base.MaxTries, base.TryNumber = "shell", 3, 0 // as the engine builds a `none` one
			none := &fsstore.Versioned[scheduler.TaskInstance]{Rec: *base}
			tr := scheduler.Queue(*base, "att-1", true, b.clock, time.Minute)
			must(t, "first transition on a missing instance", p.write(none, tr))

			got, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "load")
			must(t, "read the created instance", err)
			ti := got.Rec
			if ti.State != scheduler.TaskQueued || ti.AttemptID != "att-1" || ti.TryNumber != 1 || ti.CActive != 1 ||
				ti.QueuedAt == nil || !ti.QueuedAt.Equal(b.clock) {
				t.Fatalf("created instance = state %s, attempt %q, try %d, c_active %d, queued_at %v; want the queue transition's fields",
					ti.State, ti.AttemptID, ti.TryNumber, ti.CActive, ti.QueuedAt)
			}
			if ti.Type != "shell" || ti.MaxTries != 3 || ti.RunKey != r.Key() || fmt.Sprint(ti.Downstream) != "[report notify]" ||
				!ti.ExpireAt.Equal(base.ExpireAt) {
				t.Fatalf("created instance = type %q, max_tries %d, run_key %q, downstream %v, expire_at %v; want the base record's",
					ti.Type, ti.MaxTries, ti.RunKey, ti.Downstream, ti.ExpireAt)
			}

			// A second writer that also read it missing loses, and writes nothing.
			c0, _ := b.st.Contention()
			mark := scheduler.Mark(*base, scheduler.TaskSuccess, b.clock)
			mustIs(t, "second create", p.write(none, mark), fsstore.ErrConflict)
			again, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "load")
			must(t, "re-read", err)
			if again.Rec.State != scheduler.TaskQueued || !again.UpdateTime.Equal(got.UpdateTime) {
				t.Fatalf("after a refused second create the instance is %s at %v; want it unchanged (queued at %v)",
					again.Rec.State, again.UpdateTime, got.UpdateTime)
			}

			// Updates stay fenced by the read's update time once the document exists.
			_, err = b.st.ApplyTransition(b.ctx, r.DagID, r.RunID, got.UpdateTime, scheduler.Transition{TaskID: "load",
				From: scheduler.TaskQueued, To: scheduler.TaskQueued, Set: scheduler.TaskSet{Error: scheduler.To("theirs")}})
			must(t, "the other writer", err)
			mustIs(t, "update at a stale time", p.write(got, mark), fsstore.ErrConflict)
			now, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "load")
			must(t, "re-read", err)
			if now.Rec.State != scheduler.TaskQueued || now.Rec.Error != "theirs" {
				t.Fatalf("after a stale update the instance is %s (error %q); want queued with the other writer's error", now.Rec.State, now.Rec.Error)
			}
			if c1, _ := b.st.Contention(); c1-c0 < 2 {
				t.Errorf("Contention counted %d conflicts; want at least the lost create and the stale update", c1-c0)
			}
			must(t, "update at the current time", p.write(now, mark))
		})
	}
}

// A batch that creates some instances and updates others is still all or nothing: when one
// of its creates finds the document there, its updates are not written either.
func TestBatchWithALostCreateWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("mixed", b.clock, scheduler.RunRunning)
	there := b.ti(r, "there", scheduler.TaskNone)
	taken := b.ti(r, "taken", scheduler.TaskNone)
	must(t, "create", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{there, taken}))
	v, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "there")
	must(t, "read", err)
	fields := fsstore.TransitionFields(scheduler.Mark(*there, scheduler.TaskSuccess, b.clock))
	ups := []fsstore.TaskInstanceUpdate{
		{TI: &v.Rec, UpdateTime: v.UpdateTime, Fields: fields},
		{TI: b.ti(r, "fresh", scheduler.TaskNone), Fields: fields},
		{TI: taken, Fields: fields}, // read missing, but someone created it since
	}
	mustIs(t, "batch with a lost create", b.st.UpdateTaskInstancesIf(b.ctx, ups), fsstore.ErrConflict)
	if b.exists(t, fsstore.ColTaskInstances, scheduler.TaskKey(r.DagID, r.RunID, "fresh")) {
		t.Fatal("a refused batch created one of its instances")
	}
	if got, _ := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "there"); got.Rec.State != scheduler.TaskNone {
		t.Fatalf("a refused batch updated an instance to %s", got.Rec.State)
	}
	must(t, "batch without it", b.st.UpdateTaskInstancesIf(b.ctx, ups[:2]))
	for _, id := range []string{"there", "fresh"} {
		if got, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, id); err != nil || got.Rec.State != scheduler.TaskSuccess || got.Rec.Finished != 1 {
			t.Fatalf("%s after the batch: %+v, %v; want success with its counters", id, got, err)
		}
	}
}

// A create needs the base record's expiry, as every create does (the TTL policy deletes by
// it), and the record must be the instance the transition names.
func TestFirstTransitionRefusesABadBase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("bad", b.clock, scheduler.RunRunning)
	noExp := b.ti(r, "a", scheduler.TaskNone)
	noExp.ExpireAt = time.Time{}
	_, err := b.st.ApplyTransitionOn(b.ctx, &fsstore.Versioned[scheduler.TaskInstance]{Rec: *noExp}, scheduler.Mark(*noExp, scheduler.TaskSuccess, b.clock))
	mustIs(t, "create without expire_at", err, fsstore.ErrNoExpiry)
	if b.exists(t, fsstore.ColTaskInstances, noExp.Key()) {
		t.Fatalf("create without expire_at: err = %v; want a refusal and no document", err)
	}
	other := b.ti(r, "b", scheduler.TaskNone)
	_, err = b.st.ApplyTransitionOn(b.ctx, &fsstore.Versioned[scheduler.TaskInstance]{Rec: *other}, scheduler.Mark(*b.ti(r, "c", scheduler.TaskNone), scheduler.TaskSuccess, b.clock))
	if err == nil || b.exists(t, fsstore.ColTaskInstances, scheduler.TaskKey(r.DagID, r.RunID, "c")) {
		t.Fatalf("create of c from the record of b: err = %v; want a refusal and no document", err)
	}
}
