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

// Worker describes who claims an attempt.
type Worker struct {
	Name        string // host:pid, or the Cloud Run execution
	ExecutorRef string // how the executor finds it again (see Executor)
	LogRef      string // where the attempt's log will be kept
}

// Claim is a worker's hold on one attempt.
type Claim struct {
	Ref  scheduler.AttemptRef
	Task *dag.Task
	DAG  *dag.DAG
	Run  scheduler.Run

	e      *Engine
	mu     sync.Mutex // guards at: renewals and the result each move it
	at     time.Time  // the attempt document's update time
	ti     scheduler.TaskInstance
	tiTime time.Time // the task instance's update time after the claim

	started, ended time.Time // the attempt's start (the claim) and its recorded end
}

// MaxTries is how many tries the task has in all: its retries plus one, counted on from its
// last clear.
func (c *Claim) MaxTries() int { return max(c.ti.MaxTries, c.Ref.TryNumber) }

// Claim claims an attempt for a worker: the attempt document is created (the first delivery
// wins; a duplicate gets ErrDuplicate) and the task instance moves queued → running, only
// while it still names this attempt (else ErrStale).
func (e *Engine) Claim(ctx context.Context, ref scheduler.AttemptRef, w Worker) (*Claim, error) {
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
	task, ok := rc.task(ref.TaskID)
	if !ok {
		return nil, fmt.Errorf("%w: DAG version %s has no task %s", ErrStale, rc.run.Version, ref.TaskID)
	}
	now := e.now()
	lease := now.Add(e.cfg.Lease)
	a := scheduler.Attempt{
		ID: ref.AttemptID, DagID: ref.DagID, RunID: ref.RunID, TaskID: ref.TaskID, TryNumber: ref.TryNumber,
		Type: task.Type, State: scheduler.AttemptRunning, Worker: w.Name, ExecutorRef: w.ExecutorRef, LogRef: w.LogRef,
		LeaseExpiresAt: lease, StartedAt: now, TickDueAt: &lease, ExpireAt: e.expireAt(now),
	}
	at, err := e.store.CreateAttempt(ctx, &a)
	if errors.Is(err, fsstore.ErrExists) {
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, ref.AttemptID)
	}
	if err != nil {
		return nil, err
	}
	c := &Claim{Ref: ref, Task: task, DAG: rc.spec, Run: rc.run, e: e, at: at, started: now}
	for range maxConflictRetries {
		var ut time.Time
		f := map[string]any{"state": string(scheduler.TaskRunning), "started_at": now, "tick_due_at": nil}
		if v.Rec.SensorStartedAt == nil {
			f["sensor_started_at"] = now
		}
		ut, err = e.store.UpdateTaskInstanceIf(ctx, &v.Rec, v.UpdateTime, f)
		if err == nil {
			c.ti, c.tiTime = v.Rec, ut
			c.ti.State = scheduler.TaskRunning
			if c.ti.SensorStartedAt == nil {
				c.ti.SensorStartedAt = &now
			}
			return c, nil
		}
		if !isConflict(err) {
			return nil, err
		}
		if v, err = e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID); err != nil {
			return nil, err
		}
		if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskQueued {
			c.mu.Lock()
			_, _ = e.store.UpdateAttemptIf(ctx, ref.AttemptID, c.at, map[string]any{
				"state": string(scheduler.AttemptFailed), "error": "superseded before it started", "ended_at": now, "tick_due_at": nil,
			})
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %s changed to %s before the claim", ErrStale, v.Rec.Key(), v.Rec.State)
		}
	}
	return nil, fmt.Errorf("engine: claim %s: too many concurrent changes", ref.AttemptID)
}

// Renew extends the claim's lease. A worker calls it every LeaseInterval.
func (c *Claim) Renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	lease := c.e.now().Add(c.e.cfg.Lease)
	at, err := c.e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, map[string]any{
		"lease_expires_at": lease, "tick_due_at": lease,
	})
	if err != nil {
		return fmt.Errorf("engine: renew lease of %s: %w", c.Ref.AttemptID, err)
	}
	c.at = at
	return nil
}

// Instance is the claimed task instance as it was at the claim (a for_each instance's item
// and index are on it).
func (c *Claim) Instance() scheduler.TaskInstance { return c.ti }

// LeaseInterval is how often a worker renews its lease.
func (c *Claim) LeaseInterval() time.Duration { return c.e.cfg.Lease / 3 }

// Result is the outcome of running an attempt.
type Result struct {
	State    scheduler.AttemptState
	ExitCode *int
	Error    string
	XCom     json.RawMessage
	// Rendered is the task's arguments as rendered for this attempt, secrets masked (JSON).
	Rendered string
	// RescheduleAt, for a sensor's AttemptReschedule, is the earliest time worth poking again
	// (sensor.time knows it); nil means poke_interval from now. The engine never waits past
	// the sensor's timeout.
	RescheduleAt *time.Time
	// Final marks a failure that another try cannot fix (a template or argument error, a
	// missing secret): the retry policy is skipped, so a bad DAG causes no retry storm.
	Final bool
}

// Finish records an attempt's result, moves its task instance (only while it still names this
// attempt: a late worker can't overwrite a newer attempt), applies the retry policy, does the
// advancer's work for the task's downstream at once, publishes the task event, and then
// clears the attempt's follow-up deadline. A worker that dies anywhere in between leaves the
// deadline set, and the tick finishes the job.
func (c *Claim) Finish(ctx context.Context, res Result) error {
	e := c.e
	if err := c.record(ctx, res); err != nil {
		return err
	}
	rc := newRunCtx(c.Run, time.Time{}, c.DAG)
	v := &fsstore.Versioned[scheduler.TaskInstance]{Rec: c.ti, UpdateTime: c.tiTime}
	state, err := e.applyOutcome(ctx, rc, c.Task, c.Ref, v, res, span(c.started, c.ended))
	if err != nil {
		return err
	}
	e.publishEvent(ctx, c.Ref, state)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, map[string]any{"tick_due_at": nil}); err != nil {
		e.log.Warn("could not clear the attempt's follow-up; the tick will redo it", "attempt_id", c.Ref.AttemptID, "error", err)
	}
	return nil
}

// record writes the result on the attempt, with a follow-up deadline for the tick.
func (c *Claim) record(ctx context.Context, res Result) error {
	now := c.e.now()
	fields := map[string]any{"state": string(res.State), "ended_at": now, "error": res.Error,
		"tick_due_at": now.Add(c.e.cfg.RepublishAfter)}
	if res.ExitCode != nil {
		fields["exit_code"] = *res.ExitCode
	}
	if len(res.XCom) > 0 {
		fields["xcom"] = string(res.XCom)
	}
	if res.Rendered != "" {
		fields["rendered"] = res.Rendered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at, err := c.e.store.UpdateAttemptIf(ctx, c.Ref.AttemptID, c.at, fields)
	if err != nil {
		// The lease expired and the tick declared this worker lost: that outcome stands.
		return fmt.Errorf("%w: record result of %s: %v", ErrStale, c.Ref.AttemptID, err)
	}
	c.at, c.ended = at, now
	return nil
}

// applyOutcome moves a running task instance to the state its attempt's result gives (with
// the retry policy, a sensor's reschedule and timeout, a branch's choice, a for_each task's
// expansion), starting from v (re-read on conflict), then queues a no-delay retry or
// advances the downstream. It returns the state it wrote.
//
// ran is how long the attempt ran (negative: unknown), for the task_finished log line the
// write that wins logs.
func (e *Engine) applyOutcome(ctx context.Context, rc *runCtx, task *dag.Task, ref scheduler.AttemptRef,
	v *fsstore.Versioned[scheduler.TaskInstance], res Result, ran time.Duration) (scheduler.TaskState, error) {
	now := e.now()
	policy := scheduler.RetryPolicy{
		Retries: task.Retries, Delay: task.RetryDelay, Exponential: task.RetryExponentialBackoff, MaxRetryDelay: task.MaxRetryDelay,
	}
	outcome := res.State.TaskState()
	var (
		state  scheduler.TaskState
		retry  bool
		delay  time.Duration
		expand []json.RawMessage
	)
	if outcome == scheduler.TaskSuccess && task.ForEach != nil {
		switch err := json.Unmarshal(res.XCom, &expand); {
		case err != nil || expand == nil:
			outcome, res.Final, expand = scheduler.TaskFailed, true, nil
			res.Error = fmt.Sprintf("for_each: the expansion recorded no list (%s)", truncate(string(res.XCom), 200))
		case len(expand) > scheduler.MaxMapLength:
			outcome, res.Final, expand = scheduler.TaskFailed, true, nil
			res.Error = fmt.Sprintf("for_each: %d items is over the limit of %d instances per task", len(expand), scheduler.MaxMapLength)
		}
	}
	for i := 0; ; i++ {
		if i == maxConflictRetries {
			return "", fmt.Errorf("engine: record %s: too many concurrent changes", ref.AttemptID)
		}
		if v == nil {
			var err error
			if v, err = e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID); err != nil {
				return "", err
			}
		}
		if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskRunning {
			return "", fmt.Errorf("%w: %s is %s with attempt %s; this result does not stand", ErrStale, v.Rec.Key(), v.Rec.State, v.Rec.AttemptID)
		}
		if expand != nil {
			st, err := e.expand(ctx, rc, task, v, expand)
			if errors.Is(err, errExpandConflict) {
				v = nil
				continue
			}
			return st, err
		}
		errMsg, final := res.Error, res.Final
		state, delay = outcome, 0
		f := map[string]any{}
		if outcome == scheduler.TaskUpForReschedule {
			state, errMsg, final, f = e.reschedule(task, &v.Rec, res, now)
		}
		// Tries since the last clear decide whether another one is due.
		n := ref.TryNumber - v.Rec.TryBase
		retry = state == scheduler.TaskFailed && !final && policy.ShouldRetry(n)
		if retry {
			state, delay = scheduler.TaskUpForRetry, policy.DelayAfter(n)
			f["tick_due_at"] = now.Add(delay)
		}
		for k, x := range scheduler.StateFields(state) {
			f[k] = x
		}
		if state != scheduler.TaskUpForReschedule {
			f["ended_at"] = now
		}
		f["error"] = errMsg
		if task.Type == "branch" && state == scheduler.TaskSuccess {
			var follow []string
			_ = json.Unmarshal(res.XCom, &follow)
			f["follow"] = follow
		}
		ut, err := e.store.UpdateTaskInstanceIf(ctx, &v.Rec, v.UpdateTime, f)
		if isConflict(err) {
			v = nil
			continue
		}
		if err != nil {
			return "", err
		}
		v.UpdateTime, v.Rec.State = ut, state
		e.logTaskFinished(ctx, ref, state, res.State, ran, errMsg)
		break
	}
	switch {
	case state == scheduler.TaskUpForReschedule:
		// Nothing to advance (the tick queues the next poke at tick_due_at), but the slot the
		// poke held is free for a task waiting in scheduled.
		if err := e.fillSlots(ctx, rc); err != nil {
			return state, err
		}
	case retry && delay == 0:
		e.Stats.Retried.Add(1)
		if err := e.queue(ctx, rc, task, v, true); err != nil && !isConflict(err) {
			return state, err
		}
	case !retry:
		if err := e.cascade(ctx, rc, []string{ref.TaskID}); err != nil {
			return state, err
		}
	}
	return state, nil
}

// reschedule decides what a sensor's "not yet" poke leads to: the next poke at RescheduleAt
// or poke_interval from now, never past the try's sensor_timeout; once that has passed, the
// task fails without retries (soft_fail: it is skipped), as Airflow's AirflowSensorTimeout.
func (e *Engine) reschedule(task *dag.Task, ti *scheduler.TaskInstance, res Result, now time.Time) (scheduler.TaskState, string, bool, map[string]any) {
	started := now
	if ti.SensorStartedAt != nil {
		started = *ti.SensorStartedAt
	}
	deadline := started.Add(SensorTimeout(task))
	if !now.Before(deadline) {
		msg := fmt.Sprintf("sensor_timeout of %s passed (first poke at %s) and the condition was never met",
			SensorTimeout(task), started.UTC().Format(time.RFC3339))
		if task.SoftFail {
			return scheduler.TaskSkipped, msg + "; skipped (soft_fail)", false, map[string]any{"tick_due_at": nil}
		}
		return scheduler.TaskFailed, msg, true, map[string]any{"tick_due_at": nil}
	}
	next := now.Add(PokeInterval(task))
	if res.RescheduleAt != nil && res.RescheduleAt.After(now) {
		next = *res.RescheduleAt
	}
	if next.After(deadline) {
		next = deadline
	}
	return scheduler.TaskUpForReschedule, "", false, map[string]any{"tick_due_at": next}
}

// Sensor defaults, as Airflow's BaseSensorOperator.
const (
	DefaultPokeInterval  = time.Minute
	DefaultSensorTimeout = 7 * 24 * time.Hour
)

// PokeInterval is a sensor's time between pokes.
func PokeInterval(t *dag.Task) time.Duration {
	if t.PokeInterval > 0 {
		return t.PokeInterval
	}
	return DefaultPokeInterval
}

// SensorTimeout is how long a sensor's try may poke before it fails (or, with soft_fail, is
// skipped).
func SensorTimeout(t *dag.Task) time.Duration {
	if t.SensorTimeout > 0 {
		return t.SensorTimeout
	}
	return DefaultSensorTimeout
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// publishEvent tells the events topic's consumers (alerts) that a task instance reached a
// state whose fast-follow is already done. A failed publish is logged: the state is stored.
func (e *Engine) publishEvent(ctx context.Context, ref scheduler.AttemptRef, state scheduler.TaskState) {
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: ref, State: state, Followed: true})
	if err := e.pub.PublishEvent(ctx, ev); err != nil {
		e.log.Warn("publish task event failed; fast-follow already ran", "attempt_id", ref.AttemptID, "state", state, "error", err)
	}
}

// HandleEvent is the advancer: it redoes the fast-follow for a task event, unless its
// publisher already did it. Events of tasks that are not finished need nothing.
func (e *Engine) HandleEvent(ctx context.Context, data []byte) error {
	ev, err := scheduler.DecodeTaskEvent(data)
	if err != nil {
		e.Stats.BadMessages.Add(1)
		return err
	}
	if handled, err := e.handleEventFirst(ctx, ev); handled {
		return err
	}
	if ev.Followed || !ev.State.Finished() {
		return nil
	}
	err = e.Advance(ctx, ev.DagID, ev.RunID, ev.TaskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		e.Stats.BadMessages.Add(1)
		return fmt.Errorf("%w: event for unknown run %s/%s: %v", scheduler.ErrBadMessage, ev.DagID, ev.RunID, err)
	}
	return err
}
