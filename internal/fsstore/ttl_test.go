package fsstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Firestore's TTL deletes a document once its expire_at passes, so a run, task instance or
// attempt created without one would be deleted at once: every create of them refuses a zero
// expire_at with ErrNoExpiry, naming the document, and writes nothing.
func TestCreatesWithoutExpiryAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	ok := b.run("d", b.clock, scheduler.RunQueued)
	noExp := b.run("d", b.clock.Add(time.Hour), scheduler.RunQueued)
	noExp.ExpireAt = time.Time{}
	tiOK := b.ti(ok, "a", scheduler.TaskNone)
	tiNoExp := b.ti(ok, "b", scheduler.TaskNone)
	tiNoExp.ExpireAt = time.Time{}

	cases := []struct {
		name, names string
		create      func() error
		notWritten  [][2]string // collection, id
	}{
		{"CreateRun", noExp.Key(), func() error { return b.st.CreateRun(ctx, noExp) },
			[][2]string{{fsstore.ColRuns, noExp.Key()}}},
		{"CreateRunAt", noExp.Key(), func() error { _, err := b.st.CreateRunAt(ctx, noExp); return err },
			[][2]string{{fsstore.ColRuns, noExp.Key()}}},
		{"CreateRunsAtOnce", noExp.Key(), func() error { _, err := b.st.CreateRunsAtOnce(ctx, []*scheduler.Run{ok, noExp}); return err },
			[][2]string{{fsstore.ColRuns, ok.Key()}, {fsstore.ColRuns, noExp.Key()}}},
		{"CreateTaskInstances", tiNoExp.Key(), func() error {
			return b.st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{tiOK, tiNoExp})
		}, [][2]string{{fsstore.ColTaskInstances, tiOK.Key()}, {fsstore.ColTaskInstances, tiNoExp.Key()}}},
		{"UpdateTaskInstancesIf creating", tiNoExp.Key(), func() error {
			f := fsstore.TransitionFields(scheduler.Mark(*tiNoExp, scheduler.TaskSuccess, b.clock))
			return b.st.UpdateTaskInstancesIf(ctx, []fsstore.TaskInstanceUpdate{{TI: tiOK, Fields: f}, {TI: tiNoExp, Fields: f}})
		}, [][2]string{{fsstore.ColTaskInstances, tiOK.Key()}, {fsstore.ColTaskInstances, tiNoExp.Key()}}},
	}
	for _, c := range cases {
		err := c.create()
		if !errors.Is(err, fsstore.ErrNoExpiry) {
			t.Errorf("%s without expire_at: err = %v; want ErrNoExpiry", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.names) || !strings.Contains(err.Error(), "expire_at") {
			t.Errorf("%s: error %q does not name the document %s and the missing expire_at", c.name, err, c.names)
		}
		for _, d := range c.notWritten {
			if b.exists(t, d[0], d[1]) {
				t.Errorf("%s refused, yet %s/%s was written", c.name, d[0], d[1])
			}
		}
	}
}

// The documents infra/ gives a TTL policy keep their expiry in a timestamp field named
// expire_at (the field the policy names), with the value the caller set.
func TestExpiryIsStoredWhereTheTTLPolicyLooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.ctx
	exp := b.clock.Add(90 * 24 * time.Hour)
	r := b.run("d", b.clock, scheduler.RunQueued)
	r.ExpireAt = exp
	ti := b.ti(r, "a", scheduler.TaskNone)
	ti.ExpireAt = exp

	must(t, "run", b.st.CreateRun(ctx, r))
	must(t, "instance", b.st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{ti}))
	_, err := b.st.CreateDispatch(ctx, &fsstore.Dispatch{AttemptID: "att1", ExpireAt: exp})
	must(t, "dispatch", err)
	_, err = b.st.CreateAlertClaim(ctx, "al1", &fsstore.AlertClaim{ExpireAt: exp})
	must(t, "alert claim", err)
	_, err = b.st.CreateAlertThread(ctx, "th1", &fsstore.AlertThread{ExpireAt: exp})
	must(t, "alert thread", err)
	must(t, "slack request", b.st.ClaimSlackRequest(ctx, "v0=sig", b.clock, exp))
	slack, err := b.raw.Collection(fsstore.ColSlackRequests).Documents(ctx).GetAll()
	must(t, "list slack requests", err)
	if len(slack) != 1 {
		t.Fatalf("%d slack request claims; want 1", len(slack))
	}

	for _, d := range [][2]string{
		{fsstore.ColRuns, r.Key()},
		{fsstore.ColTaskInstances, ti.Key()},
		{fsstore.ColDispatches, "att1"},
		{fsstore.ColAlertSent, "al1"},
		{fsstore.ColAlertThreads, "th1"},
		{fsstore.ColSlackRequests, slack[0].Ref.ID},
	} {
		v := b.rawField(t, d[0], d[1], "expire_at")
		got, ok := v.(time.Time)
		if !ok || !got.Equal(exp) {
			t.Errorf("%s/%s expire_at = %#v; want the timestamp %v", d[0], d[1], v, exp)
		}
	}
}
