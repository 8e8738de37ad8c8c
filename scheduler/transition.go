package scheduler

import (
	"fmt"
	"time"
)

// The state machine's decisions are typed transitions: which task instance moves from which
// state to which, and what else changes on it. The functions here take plain views of the
// documents and the current time and return transitions; the engine applies them with the
// precondition that the document is unchanged since it was read (on a conflict it reads again
// and asks again), and the store adapter alone knows the documents' field names.

// Opt is a field a transition may change: Set false leaves it as it is; Set with the zero
// V (a nil pointer) clears it.
type Opt[T any] struct {
	Set bool
	V   T
}

// To returns an Opt that sets the field to v.
func To[T any](v T) Opt[T] { return Opt[T]{Set: true, V: v} }

// TaskSet is what a transition changes on a task instance besides its state (and the state's
// counters, which the store derives from it).
type TaskSet struct {
	TryNumber       Opt[int]
	AttemptID       Opt[string]
	QueuedAt        Opt[*time.Time]
	StartedAt       Opt[*time.Time]
	EndedAt         Opt[*time.Time]
	TickDueAt       Opt[*time.Time]
	SensorStartedAt Opt[*time.Time]
	Error           Opt[string]
	Job             Opt[string]
	Follow          Opt[[]string]
	MapCount        Opt[*int]
	TryBase         Opt[int]
	MaxTries        Opt[int]
	// HoldsSlot overrides whether the instance holds one of its run's max_active_tasks slots,
	// which otherwise follows the state (queued or running): an expanded for_each task runs
	// until its instances finish, holding none.
	HoldsSlot Opt[bool]
}

// Transition moves one task instance (TaskID, in the run the caller applies it to) from one
// state to another, with Set's other changes.
type Transition struct {
	TaskID   string
	From, To TaskState
	Set      TaskSet
}

func (t Transition) String() string { return fmt.Sprintf("%s: %s → %s", t.TaskID, t.From, t.To) }

// Queue is the transition that queues a task instance with a new attempt: from its current
// state (none, scheduled, up_for_retry, up_for_reschedule) to queued, with the republish
// deadline. newTry is false for a sensor's next poke, which keeps its try number and the
// try's first-poke time (pokes use up no tries).
func Queue(ti TaskInstance, attemptID string, newTry bool, now time.Time, republishAfter time.Duration) Transition {
	try := ti.TryNumber
	if newTry || try == 0 {
		try++
	}
	set := TaskSet{
		TryNumber: To(try), AttemptID: To(attemptID), QueuedAt: To(&now),
		TickDueAt: To(ptrTime(now.Add(republishAfter))), Error: To(""),
	}
	if newTry {
		set.SensorStartedAt = To[*time.Time](nil)
	}
	return Transition{TaskID: ti.TaskID, From: ti.State, To: TaskQueued, Set: set}
}

// ErrNotClaimable means a task instance no longer waits for the attempt a worker claims.
var ErrNotClaimable = fmt.Errorf("scheduler: the task instance does not wait for this attempt")

// Claim is the transition of a worker's claim: the instance must be queued with this attempt
// (else ErrNotClaimable); it moves to running, its republish deadline cleared, and the try's
// first poke time kept (a sensor) or set now.
func Claim(ti TaskInstance, attemptID string, now time.Time) (Transition, error) {
	if ti.AttemptID != attemptID || ti.State != TaskQueued {
		return Transition{}, fmt.Errorf("%w: %s is %s with attempt %s", ErrNotClaimable, ti.TaskID, ti.State, ti.AttemptID)
	}
	set := TaskSet{StartedAt: To(&now), TickDueAt: To[*time.Time](nil)}
	if ti.SensorStartedAt == nil {
		set.SensorStartedAt = To(&now)
	}
	return Transition{TaskID: ti.TaskID, From: TaskQueued, To: TaskRunning, Set: set}, nil
}

// Outcome is what a finished attempt reports, as the state machine needs it.
type Outcome struct {
	State AttemptState
	Error string
	// Final marks a failure another try cannot fix: no retry.
	Final bool
	// RescheduleAt is a sensor's earliest next poke (nil: PokeInterval from now).
	RescheduleAt *time.Time
}

// SensorPolicy is a sensor task's poke settings.
type SensorPolicy struct {
	PokeInterval, Timeout time.Duration
	SoftFail              bool
}

// Finish decides the transition a running instance takes when its attempt (try number try)
// ends with outcome o: success, skipped, failed (final, or with retries used up), up_for_retry
// (the retry policy, with its delay as the next try's due time), or for a sensor's "not yet"
// up_for_reschedule (its next poke, never past the try's sensor timeout; once that passed it
// fails without retries, or with soft_fail is skipped). The instance must be running with
// the attempt (else ErrNotClaimable). retryNow reports an up_for_retry with no delay, which
// the caller queues at once.
func Finish(ti TaskInstance, attemptID string, try int, o Outcome, p RetryPolicy, s SensorPolicy, now time.Time) (tr Transition, retryNow bool, err error) {
	if ti.AttemptID != attemptID || ti.State != TaskRunning {
		return Transition{}, false, fmt.Errorf("%w: %s is %s with attempt %s", ErrNotClaimable, ti.TaskID, ti.State, ti.AttemptID)
	}
	state, msg, final := o.State.TaskState(), o.Error, o.Final
	set := TaskSet{}
	if state == TaskUpForReschedule {
		started := now
		if ti.SensorStartedAt != nil {
			started = *ti.SensorStartedAt
		}
		deadline := started.Add(s.Timeout)
		switch {
		case !now.Before(deadline):
			msg = fmt.Sprintf("sensor_timeout of %s passed (first poke at %s) and the condition was never met",
				s.Timeout, started.UTC().Format(time.RFC3339))
			state, final = TaskFailed, true
			if s.SoftFail {
				state, msg, final = TaskSkipped, msg+"; skipped (soft_fail)", false
			}
			set.TickDueAt = To[*time.Time](nil)
		default:
			next := now.Add(s.PokeInterval)
			if o.RescheduleAt != nil && o.RescheduleAt.After(now) {
				next = *o.RescheduleAt
			}
			if next.After(deadline) {
				next = deadline
			}
			set.TickDueAt = To(&next)
		}
	}
	// Tries since the last clear decide whether another one is due.
	n := try - ti.TryBase
	if state == TaskFailed && !final && p.ShouldRetry(n) {
		state = TaskUpForRetry
		delay := p.DelayAfter(n)
		set.TickDueAt = To(ptrTime(now.Add(delay)))
		retryNow = delay == 0
	}
	if state != TaskUpForReschedule {
		set.EndedAt = To(&now)
	}
	set.Error = To(msg)
	return Transition{TaskID: ti.TaskID, From: TaskRunning, To: state, Set: set}, retryNow, nil
}

// Settle is the transition of a task that a trigger-rule decision finishes without an attempt:
// skipped, upstream_failed, or a ready noop completed in place. ok is false for a decision
// that finishes nothing (wait, or ready for a task that runs).
func Settle(ti TaskInstance, dec Decision, runs bool, now time.Time) (tr Transition, ok bool) {
	var to TaskState
	switch {
	case dec == Skip:
		to = TaskSkipped
	case dec == FailUpstream:
		to = TaskUpstreamFailed
	case dec == Ready && !runs:
		to = TaskSuccess
	default:
		return Transition{}, false
	}
	set := TaskSet{EndedAt: To(&now)}
	if to == TaskSuccess {
		set.StartedAt = To(&now)
	}
	return Transition{TaskID: ti.TaskID, From: ti.State, To: to, Set: set}, true
}

// Clear is the transition of clearing a task instance: back to none, with nothing of its
// last try left (attempt, times, error, a sensor's first poke, a branch's choice, a for_each
// task's instance count), and a fresh retry budget: tries count on from its try number (as
// in Airflow), and it may take retries+1 more.
func Clear(ti TaskInstance, retries int) Transition {
	var none *time.Time
	return Transition{TaskID: ti.TaskID, From: ti.State, To: TaskNone, Set: TaskSet{
		TryBase: To(ti.TryNumber), MaxTries: To(ti.TryNumber + retries + 1), AttemptID: To(""), Error: To(""),
		QueuedAt: To(none), StartedAt: To(none), EndedAt: To(none), TickDueAt: To(none), SensorStartedAt: To(none),
		Follow: To[[]string](nil), MapCount: To[*int](nil),
	}}
}

// Mark is the transition of marking a task instance success or failed by hand: it ends
// with the mark as its error text and no deadline left.
func Mark(ti TaskInstance, to TaskState, now time.Time) Transition {
	return Transition{TaskID: ti.TaskID, From: ti.State, To: to, Set: TaskSet{
		EndedAt: To(&now), TickDueAt: To[*time.Time](nil), Error: To("marked " + string(to) + " by hand"),
	}}
}

func ptrTime(t time.Time) *time.Time { return &t }
