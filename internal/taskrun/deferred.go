package taskrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Deferred types (bigquery.query, cloudrun.job) wait for their job as a sensor waits: the
// first attempt of a try saves the job's reference (engine.JobRef, on the task instance),
// submits the job and returns "not yet"; the task then waits in up_for_reschedule, holding
// no process, request or max_active_tasks slot, and each later attempt of the try is one
// short status check. When the job ends, the poke that sees it reads its results. The task's
// timeout bounds the whole wait, counted from the try's first attempt: the poke that finds it
// passed cancels the job and fails the attempt (the retry policy applies).

// JobHold is what a deferred type needs of its attempt's claim (*engine.Claim).
type JobHold interface {
	// Job is the reference saved on the task instance, by this try or an earlier one.
	Job() (engine.JobRef, bool)
	// SaveJob saves a reference; engine.ErrStale means the task was cleared or marked.
	SaveJob(ctx context.Context, ref engine.JobRef) error
	// WaitStarted is when the try's first attempt was claimed.
	WaitStarted() time.Time
}

// Pokes back off from firstPoke to the task's poke_interval (default maxPoke): the time to the
// next poke is the time the job has run so far, within those bounds, so the interval doubles
// until it reaches the cap.
const (
	firstPoke = 5 * time.Second
	maxPoke   = engine.DefaultPokeInterval
)

// Waiting is a deferred attempt's view of its try's wait: the SDK-backed deferred types
// (bigquery.query, cloudrun.job) hold their job through it.
type Waiting struct {
	tc    *Context
	first time.Duration
}

// NewWaiting is the wait of tc's try; first is the first poke's delay (0: firstPoke).
func NewWaiting(tc *Context, first time.Duration) Waiting { return Waiting{tc: tc, first: first} }

// pokeAfter is a "not yet" result: the next poke after the backoff, never later than the
// wait's deadline (the task's timeout), so the poke at the deadline cancels the job.
func (w Waiting) PokeAfter(ref engine.JobRef) engine.Result {
	now := w.Now()
	maxI := maxPoke
	if w.tc.Task != nil && w.tc.Task.PokeInterval > 0 {
		maxI = w.tc.Task.PokeInterval
	}
	first := min(w.first, maxI)
	if first <= 0 {
		first = min(firstPoke, maxI)
	}
	d := min(max(now.Sub(ref.SubmittedAt), first), maxI)
	next := now.Add(d)
	if dl, ok := w.Deadline(); ok && next.After(dl) {
		next = dl
	}
	return engine.Result{State: scheduler.AttemptReschedule, RescheduleAt: &next}
}

// deadline is when the task's timeout ends the wait.
func (w Waiting) Deadline() (time.Time, bool) {
	if w.tc.Task == nil || w.tc.Task.Timeout <= 0 || w.tc.Job == nil {
		return time.Time{}, false
	}
	return w.tc.Job.WaitStarted().Add(w.tc.Task.Timeout), true
}

// timedOut reports whether the wait's deadline has passed.
func (w Waiting) TimedOut() bool {
	dl, ok := w.Deadline()
	return ok && !w.Now().Before(dl)
}

func (w Waiting) Now() time.Time {
	if w.tc.Now != nil {
		return w.tc.Now()
	}
	return time.Now()
}

// current returns the job this try waits for, if it has one.
func (w Waiting) Current() (engine.JobRef, bool) {
	if w.tc.Job == nil {
		return engine.JobRef{}, false
	}
	ref, ok := w.tc.Job.Job()
	if !ok || ref.Cancelled || ref.Try != w.tc.Ref.TryNumber {
		return engine.JobRef{}, false
	}
	return ref, true
}

// earlier returns a job an earlier try submitted and nobody cancelled: a try that ended
// without its job ending (its worker was lost, a poke failed) leaves it running, and this try
// adopts it if it still runs or succeeded, rather than starting another.
func (w Waiting) Earlier() (engine.JobRef, bool) {
	if w.tc.Job == nil {
		return engine.JobRef{}, false
	}
	ref, ok := w.tc.Job.Job()
	if !ok || ref.Cancelled || ref.Try >= w.tc.Ref.TryNumber {
		return engine.JobRef{}, false
	}
	return ref, true
}

// save saves ref as this try's job.
func (w Waiting) Save(ctx context.Context, ref engine.JobRef) error {
	ref.Try = w.tc.Ref.TryNumber
	if err := w.tc.Job.SaveJob(ctx, ref); err != nil {
		if errors.Is(err, engine.ErrStale) {
			return fmt.Errorf("%w (the job is not submitted)", err)
		}
		return err
	}
	return nil
}
