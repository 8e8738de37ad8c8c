package runjobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

func TestFindAndCancelAnExecutionByItsAttempt(t *testing.T) {
	t.Parallel()
	srv, x, _ := setup(t)
	ctx := context.Background()
	since := time.Now()
	name, err := x.Start(ctx, "small", ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	other := scheduler.AttemptRef{DagID: "d", RunID: "manual__x", TaskID: "t", TryNumber: 2, AttemptID: "a2"}
	if _, err := x.Start(ctx, "small", other, 0); err != nil {
		t.Fatal(err)
	}
	// The start's answer was lost: the attempt's execution is found, not started again.
	got, err := x.Find(ctx, "small", ref, since)
	if err != nil || got != name {
		t.Fatalf("found %q (%v); want %q", got, err, name)
	}
	if got, err := x.Find(ctx, "small", scheduler.AttemptRef{AttemptID: "never"}, since); err != nil || got != "" {
		t.Fatalf("found %q (%v) for an attempt that started nothing", got, err)
	}
	cancelled, err := x.CancelAttempt(ctx, "small", ref, since)
	if err != nil || cancelled != name {
		t.Fatalf("cancelled %q (%v); want %q", cancelled, err, name)
	}
	waitGone(t, x, name)
	states := srv.ExecutionStates("updraft-worker-small")
	n := 0
	for _, st := range states {
		if st == "cancelled" {
			n++
		}
	}
	if n != 1 || len(states) != 2 {
		t.Fatalf("executions %v; want two, the attempt's cancelled", states)
	}
}
