package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
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
	mu     sync.Mutex // guards tiTime: renewals and the result each move it
	ti     scheduler.TaskInstance
	tiTime time.Time // the task instance's update time after this worker's last write of it

	started, ended time.Time // the attempt's start (the claim) and its recorded end
}

// MaxTries is how many tries the task has in all: its retries plus one, counted on from its
// last clear.
func (c *Claim) MaxTries() int { return max(c.ti.MaxTries, c.Ref.TryNumber) }

// A worker's writes (the claim, each renewal, the result) are not bounded by anything the
// attempt started with: each call to the store gets its own deadline, taken when the call
// starts, and a call that fails for a transient reason (fsstore.Transient: unavailable,
// overloaded, its deadline passed, aborted, internal) is tried again with backoff, for a
// bounded time. Only a failed precondition whose re-read shows that the attempt is no longer
// this worker's counts as stale.

// callTimeout is the deadline of one call to the store: half the lease, within [1s, 20s].
func (e *Engine) callTimeout() time.Duration {
	return min(max(e.cfg.Lease/2, time.Second), 20*time.Second)
}

// writePatience is how long a claim or a result is retried before the worker gives up
// (and exits non-zero): five leases, at least 10 s.
func (e *Engine) writePatience() time.Duration { return max(5*e.cfg.Lease, 10*time.Second) }

// retry calls f with a fresh deadline per call, again after a transient failure, with
// backoff, for at most patience (wall-clock time). It returns f's last error.
func (e *Engine) retry(ctx context.Context, patience time.Duration, f func(ctx context.Context) error) error {
	giveUp := time.Now().Add(patience)
	backoff := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
		err := f(cctx)
		cancel()
		if err == nil || !fsstore.Transient(err) || ctx.Err() != nil || time.Now().Add(backoff).After(giveUp) {
			return err
		}
		e.log.Debug("store call failed; trying again", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Claim claims an attempt for a worker: in one conditional write the task instance moves
// queued → running with the attempt as its latest, only while it still names this attempt
// (else ErrStale); of two deliveries of the attempt one wins, the other gets ErrDuplicate.
func (e *Engine) Claim(ctx context.Context, ref scheduler.AttemptRef, w Worker) (*Claim, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	patience := e.writePatience()
	var v *fsstore.Versioned[scheduler.TaskInstance]
	err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
		v, err = e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
		return err
	})
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: no task instance %s/%s/%s", ErrStale, ref.DagID, ref.RunID, ref.TaskID)
	}
	if err != nil {
		return nil, err
	}
	if v.Rec.AttemptID == ref.AttemptID && v.Rec.Attempt != nil && v.Rec.Attempt.ID == ref.AttemptID {
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, ref.AttemptID) // another delivery claimed it
	}
	if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskQueued {
		return nil, fmt.Errorf("%w: %s is %s with attempt %s", ErrStale, v.Rec.Key(), v.Rec.State, v.Rec.AttemptID)
	}
	var rc *runCtx
	if err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
		rc, err = e.loadRun(ctx, ref.DagID, ref.RunID)
		return err
	}); err != nil {
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
		LeaseExpiresAt: lease, StartedAt: now,
	}
	// The claim is one conditional write of the instance: queued → running with this attempt
	// as its latest. Two deliveries of the same attempt both read it queued; the instance's
	// update time lets one write land, and the other, re-reading, finds it running.
	uncertain := false // a write failed in a way that may have landed
	for range maxConflictRetries {
		tr, cerr := scheduler.Claim(v.Rec, ref.AttemptID, now)
		if cerr != nil {
			return nil, fmt.Errorf("%w: %v", ErrStale, cerr)
		}
		var ut time.Time
		err = e.retry(ctx, patience, func(ctx context.Context) (err error) {
			ut, err = e.store.ClaimAttempt(ctx, v.UpdateTime, tr, &a, fsstore.PastAfterClaim(&v.Rec, now))
			uncertain = uncertain || fsstore.Transient(err)
			return err
		})
		if err == nil {
			e.applied(ref.DagID, ref.RunID, tr)
			c := &Claim{Ref: ref, Task: task, DAG: rc.spec, Run: rc.run, e: e, started: now}
			c.ti, c.tiTime = v.Rec, ut
			c.ti.State, c.ti.Attempt = scheduler.TaskRunning, &a
			if c.ti.SensorStartedAt == nil {
				c.ti.SensorStartedAt = &now
			}
			return c, nil
		}
		if !isConflict(err) {
			return nil, err
		}
		if err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
			v, err = e.store.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
			return err
		}); err != nil {
			return nil, err
		}
		if v.Rec.AttemptID == ref.AttemptID && v.Rec.State == scheduler.TaskRunning {
			if g := v.Rec.Attempt; uncertain && g != nil && g.ID == a.ID && g.Worker == w.Name && g.ExecutorRef == w.ExecutorRef &&
				g.StartedAt.Sub(now).Abs() < time.Microsecond {
				// Our own claim, whose answer was lost.
				c := &Claim{Ref: ref, Task: task, DAG: rc.spec, Run: rc.run, e: e, started: now}
				c.ti, c.tiTime = v.Rec, v.UpdateTime
				return c, nil
			}
			return nil, fmt.Errorf("%w: %s", ErrDuplicate, ref.AttemptID)
		}
		if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskQueued {
			return nil, fmt.Errorf("%w: %s changed to %s before the claim", ErrStale, v.Rec.Key(), v.Rec.State)
		}
	}
	return nil, fmt.Errorf("engine: claim %s: too many concurrent changes", ref.AttemptID)
}

// Renew extends the claim's lease. A worker calls it every LeaseInterval. It returns
// ErrStale when the attempt is no longer this worker's (its task instance was cleared or
// ended otherwise, or the attempt was declared lost): the task should stop, its result
// would not stand. Any other error is transient; the next renewal tries again.
func (c *Claim) Renew(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, patience := c.e, c.LeaseInterval()
	var ti *fsstore.Versioned[scheduler.TaskInstance]
	err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
		ti, err = e.store.GetTaskInstance(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID)
		return err
	})
	if errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("%w: the task instance of %s is gone", ErrStale, c.Ref.AttemptID)
	}
	if err != nil {
		return fmt.Errorf("engine: renew lease of %s: %w", c.Ref.AttemptID, err)
	}
	for range maxConflictRetries {
		if err := c.stillOurs(ti); err != nil {
			return err
		}
		lease := e.now().Add(e.cfg.Lease)
		var at time.Time
		err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
			at, err = e.store.RenewLease(ctx, c.Ref, ti.UpdateTime, lease)
			return err
		})
		if err == nil {
			c.ti, c.tiTime = ti.Rec, at
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("engine: renew lease of %s: %w", c.Ref.AttemptID, err)
		}
		// Someone else wrote the instance: the tick, seeing a lapsed lease, either found this
		// worker alive (and moved the attempt's follow-up on) or declared it lost; or a clear
		// or a mark moved the instance on.
		if err := e.retry(ctx, patience, func(ctx context.Context) (err error) {
			ti, err = e.store.GetTaskInstance(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID)
			return err
		}); err != nil {
			return fmt.Errorf("engine: renew lease of %s: %w", c.Ref.AttemptID, err)
		}
	}
	return fmt.Errorf("engine: renew lease of %s: too many concurrent changes", c.Ref.AttemptID)
}

// stillOurs returns ErrStale unless the instance still runs this claim's attempt.
func (c *Claim) stillOurs(ti *fsstore.Versioned[scheduler.TaskInstance]) error {
	if ti.Rec.AttemptID != c.Ref.AttemptID || ti.Rec.State != scheduler.TaskRunning {
		return fmt.Errorf("%w: %s is now %s with attempt %s", ErrStale, ti.Rec.Key(), ti.Rec.State, ti.Rec.AttemptID)
	}
	if a := ti.Rec.Attempt; a == nil || a.ID != c.Ref.AttemptID || a.State != scheduler.AttemptRunning {
		if a != nil && a.ID == c.Ref.AttemptID {
			return fmt.Errorf("%w: attempt %s is %s: %s", ErrStale, c.Ref.AttemptID, a.State, a.Error)
		}
		return fmt.Errorf("%w: %s no longer holds attempt %s", ErrStale, ti.Rec.Key(), c.Ref.AttemptID)
	}
	return nil
}

// reread reads the claim's attempt again (from its task instance).
func (c *Claim) reread(ctx context.Context, patience time.Duration) (*fsstore.Versioned[scheduler.Attempt], error) {
	var a *fsstore.Versioned[scheduler.Attempt]
	err := c.e.retry(ctx, patience, func(ctx context.Context) (err error) {
		a, err = c.e.store.GetAttempt(ctx, c.Ref)
		return err
	})
	return a, err
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
	// The error goes on the instance twice (its own and its attempt's): a task's error of
	// megabytes must not make its result unwritable.
	res.Error = truncate(res.Error, MaxErrorBytes)
	if done, err := c.finishAtOnce(ctx, res); done {
		return err
	}
	// The result is written with the instance's transition and a follow-up deadline, in one
	// write: should any of what follows fail, the tick does it again. A for_each task's
	// expansion writes its instances first, so its result is recorded on its own before.
	var rec *fsstore.AttemptResult
	if c.Task.ForEach == nil || res.State != scheduler.AttemptSuccess {
		now := e.now()
		rec = &fsstore.AttemptResult{State: res.State, EndedAt: now, Error: res.Error, Final: res.Final, ExitCode: res.ExitCode,
			XCom: string(res.XCom), Rendered: res.Rendered, FollowUpAt: ptr(now.Add(e.cfg.RepublishAfter))}
		c.mu.Lock()
		c.ended = now
		c.mu.Unlock()
	} else if err := c.record(ctx, res); err != nil {
		return err
	}
	// Each step gets its own deadline.
	fctx, cancel := context.WithTimeout(ctx, max(e.writePatience(), 2*time.Minute))
	rc := e.newRunCtx(c.Run, time.Time{}, c.DAG)
	c.mu.Lock()
	v := &fsstore.Versioned[scheduler.TaskInstance]{Rec: c.ti, UpdateTime: c.tiTime}
	c.mu.Unlock()
	state, err := e.applyOutcome(fctx, rc, c.Task, c.Ref, v, res, span(c.started, c.ended), rec)
	cancel()
	if errors.Is(err, ErrStale) || errors.Is(err, errNotRecorded) {
		return err
	}
	if err != nil {
		e.log.Warn("result recorded; its follow-up failed and is left to the tick", "attempt_id", c.Ref.AttemptID, "error", err)
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	e.publishEvent(pctx, c.Ref, state, c.Run.Version)
	cancel()
	cctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	if err := e.clearFollowUp(cctx, c.Ref, v.UpdateTime); err != nil {
		e.log.Warn("could not clear the attempt's follow-up; the tick will redo it", "attempt_id", c.Ref.AttemptID, "error", err)
	}
	return nil
}

// record writes the result on the attempt (on its instance's document), with a follow-up
// deadline for the tick. A write that fails for a transient reason is tried again
// (writePatience); one that finds the instance changed re-reads the attempt: still running,
// it is still ours (the tick moved a live worker's follow-up on, or a clear moved the
// instance on, which applyOutcome then finds), and the write is made again; holding this very
// result, an earlier try landed; anything else (declared lost, or superseded by a newer
// attempt) means the result does not stand: ErrStale.
func (c *Claim) record(ctx context.Context, res Result) error {
	now := c.e.now()
	result := fsstore.AttemptResult{State: res.State, EndedAt: now, Error: res.Error, Final: res.Final, ExitCode: res.ExitCode,
		XCom: string(res.XCom), Rendered: res.Rendered, FollowUpAt: ptr(now.Add(c.e.cfg.RepublishAfter))}
	c.mu.Lock()
	defer c.mu.Unlock()
	patience := c.e.writePatience()
	for range maxConflictRetries {
		var at time.Time
		err := c.e.retry(ctx, patience, func(ctx context.Context) (err error) {
			at, err = c.e.store.RecordResult(ctx, c.Ref, c.tiTime, result)
			return err
		})
		if err == nil {
			c.tiTime, c.ended = at, now
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("engine: record result of %s: %w", c.Ref.AttemptID, err)
		}
		var v *fsstore.Versioned[scheduler.TaskInstance]
		if err := c.e.retry(ctx, patience, func(ctx context.Context) (err error) {
			v, err = c.e.store.GetTaskInstance(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID)
			return err
		}); err != nil {
			return fmt.Errorf("engine: record result of %s: %w", c.Ref.AttemptID, err)
		}
		a := v.Rec.Attempt
		if a == nil || a.ID != c.Ref.AttemptID {
			return fmt.Errorf("%w: record result of %s: a newer attempt replaced it", ErrStale, c.Ref.AttemptID)
		}
		// The instance and its update time go together: applyOutcome decides from both.
		switch {
		case a.State == scheduler.AttemptRunning:
			c.ti, c.tiTime = v.Rec, v.UpdateTime
		case a.State == res.State && a.EndedAt != nil && a.EndedAt.Sub(now).Abs() < time.Microsecond && a.Error == res.Error:
			c.ti, c.tiTime, c.ended = v.Rec, v.UpdateTime, now
			return nil
		default:
			// The lease expired and the tick declared this worker lost: that outcome stands.
			return fmt.Errorf("%w: record result of %s: the attempt is %s (%s)", ErrStale, c.Ref.AttemptID, a.State, a.Error)
		}
	}
	return fmt.Errorf("engine: record result of %s: too many concurrent changes", c.Ref.AttemptID)
}

// errNotRecorded means a worker's result could not be written at all (the store failed for
// longer than writePatience): the worker exits non-zero and its lease tells the tick.
var errNotRecorded = errors.New("engine: record result")

// applyOutcome moves a running task instance to the state its attempt's result gives (with
// the retry policy, a sensor's reschedule and timeout, a branch's choice, a for_each task's
// expansion), starting from v (re-read on conflict), then queues a no-delay retry or
// advances the downstream. It returns the state it wrote.
//
// rec, when not nil, is the attempt's result, not yet recorded: it is written with the
// transition, in the same write, only while the attempt still runs on the instance (a lost
// verdict or a newer attempt refuses it: ErrStale). Nil means the result is already on the
// attempt (the tick finishing a lost worker's or a dead worker's follow-up, a for_each task).
//
// ran is how long the attempt ran (negative: unknown), for the task_finished log line the
// write that wins logs.
func (e *Engine) applyOutcome(ctx context.Context, rc *runCtx, task *dag.Task, ref scheduler.AttemptRef,
	v *fsstore.Versioned[scheduler.TaskInstance], res Result, ran time.Duration, rec *fsstore.AttemptResult) (scheduler.TaskState, error) {
	now := e.now()
	policy := scheduler.RetryPolicy{
		Retries: task.Retries, Delay: task.RetryDelay, Exponential: task.RetryExponentialBackoff, MaxRetryDelay: task.MaxRetryDelay,
	}
	outcome := res.State.TaskState()
	var (
		state    scheduler.TaskState
		retry    bool
		retryNow bool // an up_for_retry with no delay: queued at once
		expand   []json.RawMessage
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
		if rec != nil {
			a := v.Rec.Attempt
			if a != nil && a.ID == ref.AttemptID && a.State == rec.State && a.EndedAt != nil && a.EndedAt.Sub(rec.EndedAt).Abs() < time.Microsecond {
				// Our own write landed; its answer was lost.
				state = v.Rec.State
				retry = state == scheduler.TaskUpForRetry
				break
			}
			if a == nil || a.ID != ref.AttemptID || a.State != scheduler.AttemptRunning {
				return "", fmt.Errorf("%w: attempt %s is no longer running on %s (declared lost, or replaced); this result does not stand", ErrStale, ref.AttemptID, v.Rec.Key())
			}
		}
		if v.Rec.AttemptID != ref.AttemptID || v.Rec.State != scheduler.TaskRunning {
			if rec != nil {
				// Cleared or marked while it ran: the attempt keeps its result for the record.
				plain := *rec
				plain.FollowUpAt = nil
				_, _ = e.store.RecordResult(ctx, ref, v.UpdateTime, plain)
			}
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
		tr, rn, err := scheduler.Finish(v.Rec, ref.AttemptID, ref.TryNumber, outcomeOf(res, outcome), policy, sensorPolicy(task), now)
		if err != nil {
			return "", fmt.Errorf("%w: %v; this result does not stand", ErrStale, err)
		}
		state, retry, retryNow = tr.To, tr.To == scheduler.TaskUpForRetry, rn
		errMsg := tr.Set.Error.V
		if state == scheduler.TaskFailed && v.Rec.Job != "" {
			tr.Set.Job = scheduler.To(e.cancelJobOf(ctx, &v.Rec, "failed")) // no try waits for its job any more (deferred.go)
		}
		if task.Type == "branch" && state == scheduler.TaskSuccess {
			var follow []string
			_ = json.Unmarshal(res.XCom, &follow)
			tr.Set.Follow = scheduler.To(follow)
		}
		var ut time.Time
		if rec == nil {
			ut, err = e.apply(ctx, ref.DagID, ref.RunID, v.UpdateTime, tr)
		} else {
			// The worker's result: tried again through an outage, as the claim is.
			err = e.retry(ctx, e.writePatience(), func(ctx context.Context) (err error) {
				ut, err = e.store.ApplyTransitionWithResult(ctx, ref, v.UpdateTime, tr, *rec)
				return err
			})
			if err == nil {
				e.applied(ref.DagID, ref.RunID, tr)
			}
		}
		if isConflict(err) {
			v = nil
			continue
		}
		if err != nil {
			if rec != nil {
				return "", fmt.Errorf("%w: %s: %v", errNotRecorded, ref.AttemptID, err)
			}
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
	case retryNow:
		e.Stats.Retried.Add(1)
		if err := e.queue(ctx, rc, task, v, true); err != nil && !isConflict(err) {
			return state, err
		}
	case !retry:
		// The state just written is known: a downstream task whose upstream it is alone (a
		// chain) is decided without counting its upstream.
		known := map[string]scheduler.TaskState{ref.TaskID: state}
		if err := e.cascadeKnown(ctx, rc, []string{ref.TaskID}, known); err != nil {
			return state, err
		}
	}
	return state, nil
}

// outcomeOf is a result as the state machine sees it, with the task state it gives (a
// for_each expansion that recorded no usable list turns success into a final failure).
func outcomeOf(res Result, outcome scheduler.TaskState) scheduler.Outcome {
	st := res.State
	if outcome == scheduler.TaskFailed && st != scheduler.AttemptFailed && st != scheduler.AttemptLost {
		st = scheduler.AttemptFailed
	}
	return scheduler.Outcome{State: st, Error: res.Error, Final: res.Final, RescheduleAt: res.RescheduleAt}
}

// sensorPolicy is a task's poke settings (the defaults for a task that sets none).
func sensorPolicy(t *dag.Task) scheduler.SensorPolicy {
	return scheduler.SensorPolicy{PokeInterval: PokeInterval(t), Timeout: SensorTimeout(t), SoftFail: t.SoftFail}
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

// MaxErrorBytes bounds a result's error as it is stored.
const MaxErrorBytes = 16 << 10

// truncate cuts s to at most n bytes, at a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// publishEvent tells the events topic's consumers (alerts) that a task instance of a run of
// DAG version version reached a state whose fast-follow is already done. A failed publish is
// logged: the state is stored.
func (e *Engine) publishEvent(ctx context.Context, ref scheduler.AttemptRef, state scheduler.TaskState, version string) {
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: ref, State: state, Followed: true, Version: version})
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
