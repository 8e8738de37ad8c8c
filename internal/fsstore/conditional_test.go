package fsstore_test

import (
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// versioned is one kind of document for the conditional-write tests: how to create it, read
// one of its string fields with the document's update time, and update that field if the
// document is unchanged since an update time.
type versioned struct {
	name   string
	create func() error
	read   func() (string, time.Time, error)
	update func(since time.Time, v string) (time.Time, error)
}

func versionedKinds(b *bundle) []versioned {
	ctx, st := b.ctx, b.st
	later := b.clock.Add(90 * 24 * time.Hour)
	r := b.run("d", b.clock, scheduler.RunQueued)
	ti := b.ti(r, "a", scheduler.TaskScheduled)
	ati := b.ti(r, "with-attempt", scheduler.TaskRunning)
	aref := scheduler.AttemptRef{DagID: ati.DagID, RunID: ati.RunID, TaskID: ati.TaskID, AttemptID: "att1"}
	rv := func(g *fsstore.Versioned[scheduler.Run], err error) (string, time.Time, error) {
		if err != nil {
			return "", time.Time{}, err
		}
		return g.Rec.Conf, g.UpdateTime, nil
	}
	return []versioned{
		{"DAG", func() error { return st.CreateDAG(ctx, &scheduler.DAGRecord{DagID: "d"}) },
			func() (string, time.Time, error) { g, err := st.GetDAG(ctx, "d"); return pick(g, err, "owner") },
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateDAGIf(ctx, "d", ut, map[string]any{"owner": v})
			}},
		{"Run", func() error { return st.CreateRun(ctx, r) },
			func() (string, time.Time, error) { return rv(st.GetRun(ctx, r.DagID, r.RunID)) },
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateRunIf(ctx, r, ut, map[string]any{"conf": v})
			}},
		{"TaskInstance", func() error { return st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{ti}) },
			func() (string, time.Time, error) {
				g, err := st.GetTaskInstance(ctx, ti.DagID, ti.RunID, ti.TaskID)
				return pick(g, err, "error")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateTaskInstanceIf(ctx, ti, ut, map[string]any{"error": v})
			}},
		{"Attempt", func() error {
			// An attempt lives on its instance: its writes are the instance's.
			if err := st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{ati}); err != nil {
				return err
			}
			g, err := st.GetTaskInstance(ctx, ati.DagID, ati.RunID, ati.TaskID)
			if err != nil {
				return err
			}
			_, err = st.ClaimAttempt(ctx, g.UpdateTime, scheduler.Transition{TaskID: ati.TaskID, From: g.Rec.State, To: g.Rec.State}, b.attempt(ati, "att1"), nil)
			return err
		},
			func() (string, time.Time, error) { g, err := st.GetAttempt(ctx, aref); return pick(g, err, "error") },
			func(ut time.Time, v string) (time.Time, error) {
				return st.RecordResult(ctx, aref, ut, fsstore.AttemptResult{State: scheduler.AttemptFailed, Error: v, EndedAt: b.clock})
			}},
		{"Backfill", func() error { return st.CreateBackfill(ctx, &scheduler.Backfill{ID: "bf1", DagID: "d"}) },
			func() (string, time.Time, error) { g, err := st.GetBackfill(ctx, "bf1"); return pick(g, err, "from") },
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateBackfillIf(ctx, "bf1", ut, map[string]any{"from": v})
			}},
		{"Dispatch", func() error {
			_, err := st.CreateDispatch(ctx, &fsstore.Dispatch{AttemptID: "att1", ExpireAt: later})
			return err
		},
			func() (string, time.Time, error) {
				g, err := st.GetDispatch(ctx, "att1")
				return pick(g, err, "execution")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateDispatchIf(ctx, "att1", ut, map[string]any{"execution": v})
			}},
		{"User", func() error { return st.CreateUser(ctx, &fsstore.UserGrant{Email: "a@example.com", Role: "viewer"}) },
			func() (string, time.Time, error) {
				g, err := st.GetUser(ctx, "a@example.com")
				return pick(g, err, "role")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateUserIf(ctx, "a@example.com", ut, map[string]any{"role": v})
			}},
		{"AlertClaim", func() error {
			_, err := st.CreateAlertClaim(ctx, "al1", &fsstore.AlertClaim{State: fsstore.AlertPending, ExpireAt: later})
			return err
		},
			func() (string, time.Time, error) {
				g, err := st.GetAlertClaim(ctx, "al1")
				return pick(g, err, "claim")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateAlertClaimIf(ctx, "al1", ut, map[string]any{"claim": v})
			}},
		{"AlertThread", func() error {
			_, err := st.CreateAlertThread(ctx, "th1", &fsstore.AlertThread{State: fsstore.AlertPending, ExpireAt: later})
			return err
		},
			func() (string, time.Time, error) {
				g, err := st.GetAlertThread(ctx, "th1")
				return pick(g, err, "claim")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateAlertThreadIf(ctx, "th1", ut, map[string]any{"claim": v})
			}},
		{"DigestCursor", func() error { _, err := st.CreateDigestCursor(ctx, "dg1", &fsstore.DigestCursor{}); return err },
			func() (string, time.Time, error) {
				g, err := st.GetDigestCursor(ctx, "dg1")
				return pick(g, err, "channel")
			},
			func(ut time.Time, v string) (time.Time, error) {
				return st.UpdateDigestCursorIf(ctx, "dg1", ut, map[string]any{"channel": v})
			}},
	}
}

// pick returns one string field of a read record by its Firestore name, with the update time.
func pick[T any](g *fsstore.Versioned[T], err error, name string) (string, time.Time, error) {
	if err != nil {
		return "", time.Time{}, err
	}
	var s string
	switch r := any(g.Rec).(type) {
	case scheduler.DAGRecord:
		s = r.Owner
	case scheduler.TaskInstance:
		s = r.Error
	case scheduler.Attempt:
		s = r.Error
	case scheduler.Backfill:
		s = r.From
	case fsstore.Dispatch:
		s = r.Execution
	case fsstore.UserGrant:
		s = r.Role
	case fsstore.AlertClaim:
		s = r.Claim
	case fsstore.AlertThread:
		s = r.Claim
	case fsstore.DigestCursor:
		s = r.Channel
	default:
		panic("pick: no field " + name + " on this record")
	}
	return s, g.UpdateTime, nil
}

// Two writers read the same version; the first conditional update wins, the second gets
// ErrConflict and the document keeps the first writer's value. The update time the winner
// gets back is the document's new version: an update with it succeeds.
func TestConditionalUpdateWithAStaleVersionConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, k := range versionedKinds(b) {
		t.Run(k.name, func(t *testing.T) {
			must(t, "create", k.create())
			_, read, err := k.read()
			must(t, "read", err)

			t1, err := k.update(read, "first")
			must(t, "first writer", err)
			_, err = k.update(read, "second")
			mustIs(t, "second writer with the stale version", err, fsstore.ErrConflict)

			got, now, err := k.read()
			must(t, "read back", err)
			if got != "first" {
				t.Fatalf("document holds %q; want the first writer's value", got)
			}
			if !now.Equal(t1) {
				t.Fatalf("document's update time %v; the winner was told %v", now, t1)
			}
			if _, err := k.update(t1, "third"); err != nil {
				t.Fatalf("update with the time the last write returned: %v", err)
			}
			if got, _, _ := k.read(); got != "third" {
				t.Fatalf("document holds %q; want third", got)
			}
			// An update time from before the document existed is stale too.
			_, err = k.update(read.Add(-time.Hour), "old")
			mustIs(t, "update with an older version", err, fsstore.ErrConflict)
		})
	}
}

// A conditional update of a document that is not there is ErrConflict (its precondition
// fails) and writes nothing: the caller re-reads and finds it gone.
func TestConditionalUpdateOfAMissingDocumentWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunQueued)
	_, err := b.st.UpdateRunIf(b.ctx, r, b.clock, map[string]any{"conf": "x"})
	mustIs(t, "update of a missing run", err, fsstore.ErrConflict)
	_, err = b.st.GetRun(b.ctx, r.DagID, r.RunID)
	mustIs(t, "the run after the update", err, fsstore.ErrNotFound)
}
