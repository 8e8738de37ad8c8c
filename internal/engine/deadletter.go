package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/scheduler"
)

// DeadLetters pulls the messages waiting in a dead-letter subscription (psqueue.Queue).
type DeadLetters interface {
	// PullOnce hands up to max waiting messages to h, acknowledges those h handled (nil or
	// ErrBadMessage), and returns how many it acknowledged. With none waiting it returns at
	// once.
	PullOnce(ctx context.Context, sub string, max int, h psqueue.Handler) (int, error)
}

// SetDeadLetters makes every tick drain the dead-letter subscriptions from d (a bounded
// synchronous pull each): on GCP nothing else reads them. Locally the stack streams them
// into HandleDeadTask and HandleDeadEvent instead, so it must not set this: a message
// would then have two consumers.
func (e *Engine) SetDeadLetters(d DeadLetters) { e.deadLetters = d }

// deadLetterBatch bounds the messages one tick takes from each dead-letter subscription; a
// larger backlog drains over the following ticks.
const deadLetterBatch = 100

// drainDeadLetters handles what waits in both dead-letter subscriptions. It returns how many
// messages were handled and acknowledged.
func (e *Engine) drainDeadLetters(ctx context.Context) (int, []error) {
	if e.deadLetters == nil {
		return 0, nil
	}
	var (
		n    int
		errs []error
	)
	for _, s := range []struct {
		sub string
		h   psqueue.Handler
	}{{psqueue.SubTasksDead, e.HandleDeadTask}, {psqueue.SubEventsDead, e.HandleDeadEvent}} {
		k, err := e.deadLetters.PullOnce(ctx, s.sub, deadLetterBatch, s.h)
		n += k
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: drain %s: %w", s.sub, err))
		}
	}
	return n, errs
}

// HandleDeadTask fails the task of a tasks-topic message that was dead-lettered (the
// dispatcher could not handle it MaxDeliveryAttempts times), so the task ends with the
// reason instead of hanging in queued. A message whose attempt is no longer current changes
// nothing. Every message it is done with (it returns nil or an ErrBadMessage: acknowledge)
// is logged once as LogEventDeadLettered; an error asks for redelivery and logs nothing.
func (e *Engine) HandleDeadTask(ctx context.Context, data []byte) error {
	msg, err := scheduler.DecodeTaskMessage(data)
	if err != nil {
		e.Stats.BadMessages.Add(1)
		e.deadLettered(ctx, psqueue.SubTasksDead, nil, "bad_message", data)
		return err
	}
	outcome, err := e.failDeadTask(ctx, msg)
	if err != nil && !errors.Is(err, scheduler.ErrBadMessage) {
		return err
	}
	e.deadLettered(ctx, psqueue.SubTasksDead, &msg.AttemptRef, outcome, data)
	return err
}

// failDeadTask fails a dead-lettered message's task instance while it still waits for that
// attempt. It returns what it did: task_failed, or not_current.
func (e *Engine) failDeadTask(ctx context.Context, msg scheduler.TaskMessage) (string, error) {
	rc, err := e.loadRun(ctx, msg.DagID, msg.RunID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return "unknown_run", fmt.Errorf("%w: dead-lettered task of unknown run %s/%s", scheduler.ErrBadMessage, msg.DagID, msg.RunID)
	}
	if err != nil {
		return "", err
	}
	reason := fmt.Sprintf("dead-lettered: attempt %s (%s) could not be dispatched after %d deliveries",
		msg.AttemptID, msg.Type, psqueue.MaxDeliveryAttempts)
	if seen := e.dispatchError(ctx, msg.AttemptID); seen != "" {
		reason += ": " + seen
	} else {
		reason += " (no error was recorded; the dispatcher's log has what it saw)"
	}
	for range maxConflictRetries {
		v, err := e.store.GetTaskInstance(ctx, msg.DagID, msg.RunID, msg.TaskID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return "not_current", nil
		}
		if err != nil {
			return "", err
		}
		if v.Rec.AttemptID == msg.AttemptID && v.Rec.State == scheduler.TaskFailed && v.Rec.Error == reason {
			// Failed by an earlier delivery of this message whose follow-up did not finish:
			// redo it (it finds nothing left when it did).
			return "task_failed", e.cascade(ctx, rc, []string{msg.TaskID})
		}
		if v.Rec.AttemptID != msg.AttemptID || v.Rec.State != scheduler.TaskQueued {
			return "not_current", nil // claimed, cleared or replaced meanwhile
		}
		now := e.now()
		_, err = e.apply(ctx, msg.DagID, msg.RunID, v.UpdateTime, scheduler.Transition{TaskID: msg.TaskID, From: v.Rec.State, To: scheduler.TaskFailed,
			Set: scheduler.TaskSet{EndedAt: scheduler.To(&now), Error: scheduler.To(reason), TickDueAt: scheduler.To[*time.Time](nil)}})
		if isConflict(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		e.logTaskFinished(ctx, msg.AttemptRef, scheduler.TaskFailed, "", -1, reason)
		if err := e.cascade(ctx, rc, []string{msg.TaskID}); err != nil {
			return "", err
		}
		e.publishEvent(ctx, msg.AttemptRef, scheduler.TaskFailed, rc.run.Version)
		return "task_failed", nil
	}
	return "", fmt.Errorf("engine: dead-letter %s: too many concurrent changes", msg.AttemptID)
}

// HandleDeadEvent takes an events-topic message that was dead-lettered (the advancer could
// not handle it MaxDeliveryAttempts times). It changes nothing: the tick's follow-up of the
// attempt advances its run. It is logged once as LogEventDeadLettered and acknowledged.
func (e *Engine) HandleDeadEvent(ctx context.Context, data []byte) error {
	var ref *scheduler.AttemptRef
	outcome := "logged"
	if ev, err := scheduler.DecodeTaskEvent(data); err == nil {
		ref = &ev.AttemptRef
	} else {
		e.Stats.BadMessages.Add(1)
		outcome = "bad_message"
	}
	e.deadLettered(ctx, psqueue.SubEventsDead, ref, outcome, data)
	return nil
}

// deadLettered counts and logs one handled dead-lettered message.
func (e *Engine) deadLettered(ctx context.Context, sub string, ref *scheduler.AttemptRef, outcome string, data []byte) {
	e.Stats.DeadLettered.Add(1)
	attrs := []slog.Attr{
		slog.String(LogKeySubscription, sub), slog.String(LogKeyOutcome, outcome), slog.String(LogKeyData, truncate(string(data), 2000)),
	}
	if ref != nil {
		attrs = append(attrs, taskAttrs(*ref)...)
	}
	e.logEvent(ctx, slog.LevelError, LogEventDeadLettered, "a dead-lettered message was handled", attrs...)
}

// NoteDispatchError records the error a delivery of a task message failed with on the
// attempt's dispatch record (best effort), so that if the message is dead-lettered the
// task's reason says what went wrong. Dispatchers call it before asking for a redelivery.
func (e *Engine) NoteDispatchError(ctx context.Context, ref scheduler.AttemptRef, cause error) {
	if cause == nil || ref.AttemptID == "" {
		return
	}
	msg := truncate(cause.Error(), 1000)
	for range 3 {
		d, err := e.store.GetDispatch(ctx, ref.AttemptID)
		if errors.Is(err, fsstore.ErrNotFound) {
			now := e.now()
			_, err = e.store.CreateDispatch(ctx, &fsstore.Dispatch{AttemptID: ref.AttemptID, DagID: ref.DagID, RunID: ref.RunID,
				TaskID: ref.TaskID, Error: msg, ExpireAt: now.Add(dispatchRetention)})
			if !errors.Is(err, fsstore.ErrExists) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		if _, err = e.store.SetDispatchErrorIf(ctx, ref.AttemptID, d.UpdateTime, msg); !isConflict(err) {
			return
		}
	}
}

// dispatchError is the last error recorded for an attempt's dispatch ("" when none).
func (e *Engine) dispatchError(ctx context.Context, attemptID string) string {
	d, err := e.store.GetDispatch(ctx, attemptID)
	if err != nil {
		return ""
	}
	return d.Rec.Error
}
