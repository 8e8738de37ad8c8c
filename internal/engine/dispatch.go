package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// ErrCannotStart marks a failure to start an attempt's execution that another try can't fix
// (the worker job does not exist, no permission, a bad request). Executors' adapters wrap it
// (runjobs maps the gRPC codes); StartContainer then fails the attempt with the reason.
var ErrCannotStart = errors.New("engine: the execution can't be started")

// ErrStartInFlight means another delivery of the same attempt is starting its execution right
// now: ask for a redelivery, which then finds the execution started.
var ErrStartInFlight = errors.New("engine: another delivery is starting this attempt's execution")

// Starter starts the container execution of an attempt (a Cloud Run job execution) and knows
// whether one still runs.
type Starter interface {
	// Start starts an execution of the worker of a resource class for the attempt, with the
	// task's timeout (0: none), and returns its name once known. An error wrapping
	// ErrCannotStart can't be fixed by another try.
	Start(ctx context.Context, resources string, ref scheduler.AttemptRef, timeout time.Duration) (string, error)
	// Alive reports whether the named execution still runs.
	Alive(ctx context.Context, name string) (bool, error)
}

// Finder is a Starter that can also find an attempt's execution by the attempt it carries,
// started since a time (runjobs looks at UPDRAFT_ATTEMPT), for a start whose answer was lost.
type Finder interface {
	Find(ctx context.Context, resources string, ref scheduler.AttemptRef, since time.Time) (string, error)
}

// StartGrace bounds how long a start may be in flight (RunJob answers with the execution's
// name within seconds): a dispatch record still starting after it belongs to a delivery that
// died, and a later delivery takes it over.
const StartGrace = 2 * time.Minute

// dispatchRetention is how long dispatch records are kept (Firestore's TTL on expire_at).
const dispatchRetention = 90 * 24 * time.Hour

// Started says what StartContainer did with a task message.
type Started string

// What StartContainer did.
const (
	// StartedNew: an execution was started (Execution names it).
	StartedNew Started = "started"
	// StartedAlready: an execution started by an earlier delivery still runs, or the attempt
	// is claimed: nothing was started.
	StartedAlready Started = "already_started"
	// StartedStale: the task instance no longer waits for this attempt; nothing to do.
	StartedStale Started = "stale"
	// StartedFailed: the execution can't be started (ErrCannotStart); the attempt failed with
	// the reason and the retry policy applied.
	StartedFailed Started = "failed"
)

// StartReport is StartContainer's outcome.
type StartReport struct {
	Outcome   Started
	Execution string // the execution started or found running
	Reason    string // why the start failed, for StartedFailed
}

// StartContainer starts the execution of a container task's attempt at most once per live
// execution, however often its message is delivered: the attempt's dispatch record (created
// by the first delivery, conditional writes after) names the execution; a redelivery finds
// it and leaves a running execution alone, and starts another only when that one ended
// without claiming the attempt (the tick republishes unclaimed attempts, with the same id).
// An attempt already claimed, or no longer current, starts nothing. A start that can never
// succeed (ErrCannotStart) fails the attempt with its reason, and the task's retry policy
// applies; any other error is transient: the caller asks for a redelivery.
func (e *Engine) StartContainer(ctx context.Context, msg scheduler.TaskMessage, s Starter) (StartReport, error) {
	ref := msg.AttemptRef
	if err := ref.Validate(); err != nil {
		return StartReport{}, err
	}
	for range maxConflictRetries {
		ti, err := e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return StartReport{Outcome: StartedStale}, nil
		}
		if err != nil {
			return StartReport{}, err
		}
		if ti.Rec.AttemptID != ref.AttemptID || ti.Rec.State != scheduler.TaskQueued {
			if ti.Rec.AttemptID == ref.AttemptID && ti.Rec.State == scheduler.TaskRunning {
				return StartReport{Outcome: StartedAlready}, nil
			}
			return StartReport{Outcome: StartedStale}, nil
		}
		now := e.now()
		var held time.Time // the dispatch record's update time once this delivery holds it
		d, err := e.store.GetDispatch(ctx, ref.AttemptID)
		switch {
		case errors.Is(err, fsstore.ErrNotFound):
			held, err = e.store.CreateDispatch(ctx, &fsstore.Dispatch{
				AttemptID: ref.AttemptID, DagID: ref.DagID, RunID: ref.RunID, TaskID: ref.TaskID,
				StartingAt: now, Starts: 1, ExpireAt: now.Add(dispatchRetention),
			})
			if errors.Is(err, fsstore.ErrExists) {
				continue // another delivery got there first: decide again
			}
			if err != nil {
				return StartReport{}, err
			}
		case err != nil:
			return StartReport{}, err
		case d.Rec.Execution == "" && now.Sub(d.Rec.StartingAt) < StartGrace:
			return StartReport{}, fmt.Errorf("%w (attempt %s, since %s)", ErrStartInFlight, ref.AttemptID, d.Rec.StartingAt.UTC().Format(time.RFC3339))
		default:
			if d.Rec.Execution == "" {
				// A delivery that started an execution may have died before naming it.
				if f, ok := s.(Finder); ok {
					name, err := f.Find(ctx, msg.Resources, ref, d.Rec.StartingAt)
					if err != nil {
						return StartReport{}, fmt.Errorf("engine: find the execution of %s: %w", ref.AttemptID, err)
					}
					d.Rec.Execution = name
				}
			}
			if d.Rec.Execution != "" {
				alive, err := s.Alive(ctx, d.Rec.Execution)
				if err != nil {
					return StartReport{}, fmt.Errorf("engine: is %s alive: %w", d.Rec.Execution, err)
				}
				if alive {
					return StartReport{Outcome: StartedAlready, Execution: d.Rec.Execution}, nil
				}
				e.log.Warn("the execution of an attempt ended without claiming it; starting another",
					"attempt_id", ref.AttemptID, "execution", d.Rec.Execution)
			}
			held, err = e.store.RestartDispatchIf(ctx, ref.AttemptID, d.UpdateTime, now, d.Rec.Starts+1)
			if isConflict(err) {
				continue
			}
			if err != nil {
				return StartReport{}, err
			}
		}
		return e.start(ctx, msg, s, held)
	}
	return StartReport{}, fmt.Errorf("engine: start %s: too many concurrent changes", ref.AttemptID)
}

// start starts the execution for a dispatch record this delivery holds since held.
func (e *Engine) start(ctx context.Context, msg scheduler.TaskMessage, s Starter, held time.Time) (StartReport, error) {
	ref := msg.AttemptRef
	name, err := s.Start(ctx, msg.Resources, ref, time.Duration(msg.TimeoutSeconds)*time.Second)
	if err != nil {
		if !errors.Is(err, ErrCannotStart) {
			// Let the next delivery start it at once rather than after StartGrace.
			if _, rerr := e.store.ReleaseDispatchIf(ctx, ref.AttemptID, held, err.Error()); rerr != nil {
				e.log.Warn("could not release the dispatch record", "attempt_id", ref.AttemptID, "error", rerr)
			}
			return StartReport{}, err
		}
		reason := fmt.Sprintf("could not start the worker job for %s (resources %q): %v", msg.Type, msg.Resources, err)
		if _, rerr := e.store.SetDispatchErrorIf(ctx, ref.AttemptID, held, reason); rerr != nil {
			e.log.Warn("could not record the failed start", "attempt_id", ref.AttemptID, "error", rerr)
		}
		return e.failUnstarted(ctx, ref, reason)
	}
	if _, err := e.store.SetDispatchExecutionIf(ctx, ref.AttemptID, held, name); err != nil {
		// The execution runs and will claim the attempt; a later delivery that finds no name
		// after StartGrace starts another, whose worker then finds the attempt claimed.
		e.log.Warn("could not record the execution started", "attempt_id", ref.AttemptID, "execution", name, "error", err)
	}
	return StartReport{Outcome: StartedNew, Execution: name}, nil
}

// failUnstarted fails an attempt whose execution could not be started: the dispatcher
// claims it in the worker's place and records the failure, so the task's retry policy, its
// downstream and its event go as for any failed attempt.
func (e *Engine) failUnstarted(ctx context.Context, ref scheduler.AttemptRef, reason string) (StartReport, error) {
	c, err := e.Claim(ctx, ref, Worker{Name: "dispatcher"})
	switch {
	case errors.Is(err, ErrDuplicate):
		return StartReport{Outcome: StartedAlready}, nil
	case errors.Is(err, ErrStale):
		return StartReport{Outcome: StartedStale}, nil
	case err != nil:
		return StartReport{}, err
	}
	if err := c.Finish(ctx, Result{State: scheduler.AttemptFailed, Error: reason}); err != nil && !errors.Is(err, ErrStale) {
		return StartReport{}, err
	}
	return StartReport{Outcome: StartedFailed, Reason: reason}, nil
}
