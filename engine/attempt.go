package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/dag"
	"github.com/updraft-dev/updraft/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Errors a worker branches on. Both mean: acknowledge the message and drop it.
var (
	// ErrDuplicate means another delivery of the same attempt already claimed it.
	ErrDuplicate = errors.New("engine: attempt already claimed")
	// ErrStale means the task instance no longer waits for this attempt (it was cleared,
	// marked, or a newer attempt replaced it).
	ErrStale = errors.New("engine: attempt is no longer current")
)

// Claim is a worker's hold on one attempt.
type Claim struct {
	Ref  scheduler.AttemptRef
	Task *dag.Task
	DAG  *dag.DAG
	Run  scheduler.Run

	e  *Engine
	mu sync.Mutex // guards attemptTime: renewals and the result each move it
	at time.Time
}

// Claim claims an attempt for a worker: the attempt document is created (the first delivery
// wins; a duplicate gets ErrDuplicate) and the task instance moves queued → running, only
// while it still names this attempt (else ErrStale).
func (e *Engine) Claim(ctx context.Context, ref scheduler.AttemptRef, worker, executorRef string) (*Claim, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	v, err := e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: no task instance %s/%s/%s", ErrStale, ref.DagID, ref.RunID, ref.TaskID)
	}
	if err != nil {
		return nil, err
	}
	if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskQueued {
		return nil, fmt.Errorf("%w: %s is %s with attempt %s", ErrStale, v.Rec.Key(), v.Rec.State, v.Rec.AttemptID)
	}
	rc, err := e.loadRun(ctx, ref.DagID, ref.RunID)
	if err != nil {
		return nil, err
	}
	task, ok := rc.spec.Task(ref.TaskID)
	if !ok {
		return nil, fmt.Errorf("%w: DAG version %s has no task %s", ErrStale, rc.run.Version, ref.TaskID)
	}
	now := e.now()
	a := scheduler.Attempt{
		ID: ref.AttemptID, DagID: ref.DagID, RunID: ref.RunID, TaskID: ref.TaskID, TryNumber: ref.TryNumber,
		Type: task.Type, State: scheduler.AttemptRunning, Worker: worker, ExecutorRef: executorRef,
		LeaseExpiresAt: now.Add(e.cfg.Lease), StartedAt: now,
	}
	at, err := e.store.CreateAttempt(ctx, &a)
	if errors.Is(err, fsstore.ErrExists) {
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, ref.AttemptID)
	}
	if err != nil {
		return nil, err
	}
	c := &Claim{Ref: ref, Task: task, DAG: rc.spec, Run: rc.run, e: e, at: at}
	for range maxConflictRetries {
		_, err = e.store.UpdateTaskInstanceIf(ctx, &v.Rec, v.UpdateTime, map[string]any{
			"state": string(scheduler.TaskRunning), "started_at": now, "tick_due_at": nil,
		})
		if !isConflict(err) {
			break
		}
		if v, err = e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID); err != nil {
			break
		}
		if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskQueued {
			c.abandon(ctx, "superseded before it started")
			return nil, fmt.Errorf("%w: %s changed to %s before the claim", ErrStale, v.Rec.Key(), v.Rec.State)
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Claim) abandon(ctx context.Context, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = c.e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, map[string]any{
		"state": string(scheduler.AttemptFailed), "error": why, "ended_at": c.e.now(),
	})
}

// Renew extends the claim's lease. A worker calls it every third of the lease.
func (c *Claim) Renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, err := c.e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, map[string]any{
		"lease_expires_at": c.e.now().Add(c.e.cfg.Lease),
	})
	if err != nil {
		return fmt.Errorf("engine: renew lease of %s: %w", c.Ref.AttemptID, err)
	}
	c.at = at
	return nil
}

// LeaseInterval is how often a worker renews its lease.
func (c *Claim) LeaseInterval() time.Duration { return c.e.cfg.Lease / 3 }

// SetLogRef records where the attempt's log is kept.
func (c *Claim) SetLogRef(ctx context.Context, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, err := c.e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, map[string]any{"log_ref": ref})
	if err != nil {
		return fmt.Errorf("engine: set log ref of %s: %w", c.Ref.AttemptID, err)
	}
	c.at = at
	return nil
}

// Result is the outcome of running an attempt.
type Result struct {
	State    scheduler.AttemptState
	ExitCode *int
	Error    string
	XCom     json.RawMessage
}

// Finish records an attempt's result, moves its task instance (only while it still names this
// attempt: a late worker can't overwrite a newer attempt), applies the retry policy, does the
// advancer's work for the task's downstream at once, and publishes the task event.
func (c *Claim) Finish(ctx context.Context, res Result) error {
	e := c.e
	now := e.now()
	c.mu.Lock()
	fields := map[string]any{"state": string(res.State), "ended_at": now, "error": res.Error}
	if res.ExitCode != nil {
		fields["exit_code"] = *res.ExitCode
	}
	if len(res.XCom) > 0 {
		fields["xcom"] = string(res.XCom)
	}
	_, err := e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, fields)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("engine: record result of %s: %w", c.Ref.AttemptID, err)
	}

	state := res.State.TaskState()
	policy := scheduler.RetryPolicy{
		Retries: c.Task.Retries, Delay: c.Task.RetryDelay, Exponential: c.Task.RetryExponentialBackoff,
		MaxRetryDelay: c.Task.MaxRetryDelay,
	}
	retry := state == scheduler.TaskFailed && policy.ShouldRetry(c.Ref.TryNumber)
	var delay time.Duration
	if retry {
		state, delay = scheduler.TaskUpForRetry, policy.DelayAfter(c.Ref.TryNumber)
	}
	var v *fsstore.Versioned[scheduler.TaskInstance]
	for range maxConflictRetries {
		v, err = e.store.GetTaskInstance(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID)
		if err != nil {
			return err
		}
		if v.Rec.AttemptID != c.Ref.AttemptID || v.Rec.State != scheduler.TaskRunning {
			return fmt.Errorf("%w: %s is %s with attempt %s; this result does not stand", ErrStale, v.Rec.Key(), v.Rec.State, v.Rec.AttemptID)
		}
		f := scheduler.StateFields(state)
		f["ended_at"] = now
		f["error"] = res.Error
		if retry {
			f["tick_due_at"] = now.Add(delay)
		}
		var ut time.Time
		ut, err = e.store.UpdateTaskInstanceIf(ctx, &v.Rec, v.UpdateTime, f)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		v.UpdateTime = ut
		v.Rec.State = state
		break
	}
	if err != nil {
		return err
	}
	rc := &runCtx{run: c.Run, spec: c.DAG, downstream: c.DAG.Downstream()}
	switch {
	case retry && delay == 0:
		e.Stats.Retried.Add(1)
		if err := e.queue(ctx, rc, c.Task, v); err != nil && !isConflict(err) {
			return err
		}
	case !retry:
		if err := e.cascade(ctx, rc, []string{c.Ref.TaskID}); err != nil {
			return err
		}
	}
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: c.Ref, State: state})
	if err := e.pub.PublishEvent(ctx, ev); err != nil {
		e.log.Warn("publish task event failed; fast-follow already ran", "attempt_id", c.Ref.AttemptID, "error", err)
	}
	return nil
}

// HandleEvent is the advancer: it re-does the fast-follow for a task event. Events of tasks
// that are not finished (up_for_retry) need nothing.
func (e *Engine) HandleEvent(ctx context.Context, data []byte) error {
	ev, err := scheduler.DecodeTaskEvent(data)
	if err != nil {
		e.Stats.BadMessages.Add(1)
		return err
	}
	if !ev.State.Finished() {
		return nil
	}
	err = e.Advance(ctx, ev.DagID, ev.RunID, ev.TaskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		e.Stats.BadMessages.Add(1)
		return fmt.Errorf("%w: event for unknown run %s/%s: %v", scheduler.ErrBadMessage, ev.DagID, ev.RunID, err)
	}
	return err
}
