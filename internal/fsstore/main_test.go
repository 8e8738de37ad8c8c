package fsstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// The store's conformance suite: every test runs against the Firestore emulator, in a
// project of its own, and checks through the exported API the behaviour the engine's
// exactly-once claims rest on (creates that refuse a second writer, updates and deletes
// fenced by the read's update time, atomic batches, aggregations, due-range queries, expiry).

func TestMain(m *testing.M) { emutest.Main(m) }

// bundle is one test's world: a store on a project of its own, and a raw client on the same
// project to look at documents as Firestore keeps them (field names and types that the TTL
// policy and the indexes in infra/ rely on).
type bundle struct {
	ctx   context.Context
	st    *fsstore.Store
	raw   *firestore.Client
	clock time.Time // a fixed "now" with whole microseconds, as Firestore keeps them
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	project := emutest.Project(t)
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &bundle{ctx: ctx, st: st, raw: raw, clock: time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)}
}

// rawField reads one field of a document as Firestore stores it.
func (b *bundle) rawField(t *testing.T, col, id, field string) any {
	t.Helper()
	snap, err := b.raw.Collection(col).Doc(id).Get(b.ctx)
	if err != nil {
		t.Fatalf("raw read %s/%s: %v", col, id, err)
	}
	v, err := snap.DataAt(field)
	if err != nil {
		t.Fatalf("raw read %s/%s field %s: %v", col, id, field, err)
	}
	return v
}

// exists reports whether a document is there, read with the raw client.
func (b *bundle) exists(t *testing.T, col, id string) bool {
	t.Helper()
	_, err := b.raw.Collection(col).Doc(id).Get(b.ctx)
	if err == nil {
		return true
	}
	if status.Code(err) == codes.NotFound {
		return false
	}
	t.Fatalf("raw read %s/%s: %v", col, id, err)
	return false
}

// mustIs fails the test unless err wraps want.
func mustIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v; want %v", what, err, want)
	}
}

// must fails the test on an error.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func ptr[T any](v T) *T { return &v }

// run returns a run of dagID at a logical date, with its expiry set.
func (b *bundle) run(dagID string, logical time.Time, state scheduler.RunState) *scheduler.Run {
	return &scheduler.Run{
		DagID: dagID, RunID: scheduler.RunID(scheduler.RunScheduled, logical), RunType: scheduler.RunScheduled,
		State: state, LogicalDate: logical, CreatedAt: b.clock, ExpireAt: b.clock.Add(90 * 24 * time.Hour),
	}
}

// ti returns a task instance of a run in a state, its counters kept as the engine keeps them.
func (b *bundle) ti(r *scheduler.Run, taskID string, state scheduler.TaskState, downstream ...string) *scheduler.TaskInstance {
	ti := &scheduler.TaskInstance{
		DagID: r.DagID, RunID: r.RunID, RunKey: r.Key(), TaskID: taskID, Type: "noop",
		State: state, TryNumber: 1, MaxTries: 1, Downstream: downstream, ExpireAt: b.clock.Add(90 * 24 * time.Hour),
	}
	f := fsstore.StateFields(state)
	ti.Finished, ti.Bad = f["finished"].(int), f["bad"].(int)
	ti.CSuccess, ti.CFailed = f["c_success"].(int), f["c_failed"].(int)
	ti.CUpstreamFail, ti.CSkipped = f["c_upstream_failed"].(int), f["c_skipped"].(int)
	ti.CActive = f["c_active"].(int)
	return ti
}

// attempt returns a running attempt of a task instance.
func (b *bundle) attempt(ti *scheduler.TaskInstance, id string) *scheduler.Attempt {
	return &scheduler.Attempt{
		ID: id, DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, TryNumber: ti.TryNumber, Type: ti.Type,
		State: scheduler.AttemptRunning, Worker: "w1", LeaseExpiresAt: b.clock.Add(time.Minute),
		StartedAt: b.clock,
	}
}

// putAttempt makes a the latest attempt of its (stored) task instance, its state kept, as a
// claim does: the previous latest goes to the instance's past attempts. It returns the
// instance's new update time.
func (b *bundle) putAttempt(t *testing.T, a *scheduler.Attempt) time.Time {
	t.Helper()
	v, err := b.st.GetTaskInstance(b.ctx, a.DagID, a.RunID, a.TaskID)
	must(t, "read the instance of "+a.ID, err)
	tr := scheduler.Transition{TaskID: a.TaskID, From: v.Rec.State, To: v.Rec.State}
	ut, err := b.st.ClaimAttempt(b.ctx, v.UpdateTime, tr, a, fsstore.PastAfterClaim(&v.Rec, b.clock))
	must(t, "put attempt "+a.ID, err)
	return ut
}
