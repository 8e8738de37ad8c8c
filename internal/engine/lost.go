package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Executor knows whether a worker's execution still exists: a local subprocess, or a Cloud
// Run job execution.
type Executor interface {
	// Alive reports whether the execution named by ref (an attempt's executor_ref) still
	// runs. An error means it can't tell; the attempt is left for a later tick.
	Alive(ctx context.Context, ref string) (bool, error)
	// Cancel stops the execution (the worker gets SIGTERM, records what it can, and exits).
	Cancel(ctx context.Context, ref string) error
}

// SetExecutor sets the executor the tick asks about expired leases. Without one, every
// execution counts as unknown, hence lost, once its lease expires.
func (e *Engine) SetExecutor(x Executor) { e.executor = x }

// tickAttempt handles an attempt whose tick_due_at passed: a finished attempt whose worker
// did not confirm its follow-up gets it done here; a running attempt whose lease expired and
// whose execution is gone is failed as a lost worker, and the retry policy applies.
func (e *Engine) tickAttempt(ctx context.Context, v *fsstore.Versioned[scheduler.Attempt], now time.Time) (string, error) {
	a := v.Rec
	ref := scheduler.AttemptRef{DagID: a.DagID, RunID: a.RunID, TaskID: a.TaskID, TryNumber: a.TryNumber, AttemptID: a.ID}
	if a.State == scheduler.AttemptRunning {
		if a.LeaseExpiresAt.After(now) {
			return "", nil // renewed meanwhile
		}
		alive := false
		if e.executor != nil && a.ExecutorRef != "" {
			var err error
			if alive, err = e.executor.Alive(ctx, a.ExecutorRef); err != nil {
				return "", fmt.Errorf("engine: ask about %s: %w", a.ExecutorRef, err)
			}
		}
		if alive {
			_, err := e.store.SetFollowUp(ctx, ref, v.UpdateTime, ptr(now.Add(e.cfg.Lease)))
			if isConflict(err) {
				err = nil
			}
			return "", err
		}
		msg := fmt.Sprintf("lost worker: its lease expired at %s and its execution %q is gone", a.LeaseExpiresAt.UTC().Format(time.RFC3339), a.ExecutorRef)
		ut, err := e.store.RecordResult(ctx, ref, v.UpdateTime, fsstore.AttemptResult{
			State: scheduler.AttemptLost, Error: msg, EndedAt: now, FollowUpAt: ptr(now.Add(e.cfg.RepublishAfter)),
		})
		if isConflict(err) {
			return "", nil // the worker recorded its result first: that outcome stands
		}
		if err != nil {
			return "", err
		}
		v.UpdateTime, a.State, a.Error, a.EndedAt = ut, scheduler.AttemptLost, msg, &now
		e.Stats.LostWorkers.Add(1)
		e.logEvent(ctx, slog.LevelWarn, LogEventLostWorker, "lost worker: the attempt failed",
			append(taskAttrs(ref),
				slog.String(LogKeyExecutorRef, a.ExecutorRef), slog.Time("lease_expired_at", a.LeaseExpiresAt))...)
	}
	rc, err := e.loadRun(ctx, a.DagID, a.RunID)
	if err != nil {
		return "", err
	}
	task, ok := rc.task(a.TaskID)
	if !ok {
		return "", fmt.Errorf("engine: run %s has no task %s", rc.run.Key(), a.TaskID)
	}
	ti, err := e.store.GetTaskInstance(ctx, a.DagID, a.RunID, a.TaskID)
	if err != nil {
		return "", err
	}
	ended := now
	if a.EndedAt != nil {
		ended = *a.EndedAt
	}
	switch {
	case ti.Rec.AttemptID == a.ID && ti.Rec.State == scheduler.TaskRunning:
		// The outcome is on the attempt but not yet on the task instance.
		state, err := e.applyOutcome(ctx, rc, task, ref, ti, Result{State: a.State, Error: a.Error, Final: a.Final, XCom: json.RawMessage(a.XCom)}, span(a.StartedAt, ended), nil)
		if err != nil {
			return "", err
		}
		e.publishEvent(ctx, ref, state, rc.run.Version)
	case ti.Rec.AttemptID == a.ID && ti.Rec.State.Finished():
		// The worker died during its fast-follow, perhaps deep in a cascade of noop tasks
		// that a cascade from this task alone would not walk again: sweep the run.
		if err := e.sweepRun(ctx, rc); err != nil {
			return "", err
		}
	}
	err = e.clearFollowUp(ctx, ref, ti.UpdateTime)
	if a.State == scheduler.AttemptLost {
		return "lost", err
	}
	return "followed", err
}

// clearFollowUp clears the tick's look at an instance's latest attempt once what followed its
// result is done, starting from the instance's update time ut (read again on conflict). It
// leaves the deadline of an attempt that is not ref's, or that still runs (its lease).
func (e *Engine) clearFollowUp(ctx context.Context, ref scheduler.AttemptRef, ut time.Time) error {
	for range maxConflictRetries {
		_, err := e.store.SetFollowUp(ctx, ref, ut, nil)
		if !isConflict(err) {
			return err
		}
		v, err := e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
		if err != nil {
			return err
		}
		if a := v.Rec.Attempt; a == nil || a.ID != ref.AttemptID || a.State == scheduler.AttemptRunning || v.Rec.AttemptDueAt == nil {
			return nil
		}
		ut = v.UpdateTime
	}
	return fmt.Errorf("engine: clear the follow-up of %s: too many concurrent changes", ref.AttemptID)
}
