package runjobs

import (
	"context"
	"strings"
	"testing"
	"time"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun/taskruntest"
	"github.com/updraft-dev/updraft/scheduler"
)

func TestCloudRunJobIsStartedOncePerAttemptWhateverDies(t *testing.T) {
	b := setupCloudRun(t, map[string]runemu.JobSpec{"long": {Command: []string{"/bin/sh", "-c", "sleep 30"}}})
	task := &dag.Task{ID: "t", Type: "cloudrun.job"}
	args := map[string]any{"job": "long"}
	hold := &taskruntest.MemHold{Started: time.Now()}
	ctx := context.Background()

	// The first attempt saves the reference before it starts the execution, then waits.
	tc, log := taskruntest.DeferredContext(t, b.env, hold, 1, "att-1", task, args)
	res := CloudRunJob().Run(ctx, tc)
	if res.State != scheduler.AttemptReschedule || res.RescheduleAt == nil {
		t.Fatalf("submit: %s %q; want up_for_reschedule with a next poke\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after the submit; want 1", n)
	}
	ref, _ := hold.Job()
	if ref.Tag != "att-1" || ref.Execution == "" || ref.Try != 1 {
		t.Fatalf("saved reference %+v", ref)
	}

	// The process died after RunJob and before it saved the execution's name: the same
	// attempt delivered again finds the execution by its tag.
	lost := ref
	lost.Execution = ""
	hold.Ref = lost.String()
	tc, log = taskruntest.DeferredContext(t, b.env, hold, 1, "att-1", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("redelivered submit: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after a redelivered submit; want 1\n%s", n, log)
	}
	if got, _ := hold.Job(); got.Execution != ref.Execution {
		t.Fatalf("found %q by tag; want %q", got.Execution, ref.Execution)
	}

	// The worker was lost and the retry policy started try 2: it adopts the running execution.
	hold.Ref = lost.String()
	tc, log = taskruntest.DeferredContext(t, b.env, hold, 2, "att-2", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("try 2: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after try 2; want the one of try 1, adopted\n%s", n, log)
	}
	if got, _ := hold.Job(); got.Try != 2 || got.Tag != "att-1" || !strings.Contains(log.String(), "adopts") {
		t.Fatalf("try 2 saved %+v\n%s", got, log)
	}

	// Its timeout passed: the poke cancels the execution and fails; the next try starts anew.
	task.Timeout = time.Second
	hold.Started = time.Now().Add(-time.Minute)
	tc, log = taskruntest.DeferredContext(t, b.env, hold, 2, "att-3", task, args)
	res = CloudRunJob().Run(ctx, tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "timed out after 1s") || !strings.Contains(res.Error, "cancelled") {
		t.Fatalf("poke past the timeout: %s %q", res.State, res.Error)
	}
	taskruntest.WaitFor(t, "the execution to end cancelled", func() bool {
		for _, st := range b.srv.ExecutionStates("long") {
			return st == "cancelled"
		}
		return false
	})
	if got, _ := hold.Job(); !got.Cancelled {
		t.Fatalf("the cancelled execution is not marked so: %+v", got)
	}
	task.Timeout = 0
	hold.Started = time.Now()
	tc, log = taskruntest.DeferredContext(t, b.env, hold, 3, "att-4", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("try 3: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 2 {
		t.Fatalf("%d executions; want a new one for try 3 (the cancelled one is not adopted)", n)
	}
	if err := CancelDeferred(ctx, func(k string) string { return b.env[k] }, taskruntest.MustRef(t, hold)); err != nil {
		t.Fatal(err)
	}
}
