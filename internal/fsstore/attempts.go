package fsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/scheduler"
)

// The attempts of a task instance live on the instance's document: `attempt` is its latest
// claimed attempt (worker, lease and, once it ended, its result), `past_attempts` the ones
// before it, and `attempt_due_at` when the tick must look at the latest one. So a claim is one
// write (the instance's queued → running with the attempt), a finished task is one write (its
// result with the instance's final state), and an attempt's writes are preconditioned on the
// instance's update time: a clear, a mark or a newer claim fences a late worker out.
//
// Each attempt function takes the attempt's AttemptRef (which names its instance); the
// update time they take and return is the instance's.

// attemptPrefix is the field path of the latest attempt on an instance's document.
const attemptPrefix = "attempt."

// ClaimAttempt moves an instance queued → running (tr) and makes a its latest attempt, in one
// write, if the instance is unchanged since updateTime (else ErrConflict). past is what
// past_attempts becomes (the previous latest attempt appended; see PastAfterClaim). The
// attempt's lease is also when the tick looks at it.
func (s *Store) ClaimAttempt(ctx context.Context, updateTime time.Time, tr scheduler.Transition, a *scheduler.Attempt, past []scheduler.Attempt) (time.Time, error) {
	f := TransitionFields(tr)
	rec := *a
	rec.TickDueAt = nil
	f["attempt"] = rec
	f["attempt_due_at"] = a.LeaseExpiresAt
	f["attempt_count"] = 1
	if past != nil {
		f["past_attempts"] = past
		f["attempt_count"] = len(past) + 1
	}
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(a.DagID, a.RunID, a.TaskID), updateTime, f)
}

// PastAfterClaim is what an instance's past_attempts becomes when a new attempt is claimed:
// the latest attempt appended (one still running then was superseded: a clear or a mark moved
// the instance on while it ran), without its XCom and with its rendered arguments and error
// clipped to MaxPastText, the oldest dropped beyond MaxPastAttempts. It is nil when nothing
// changes.
func PastAfterClaim(ti *scheduler.TaskInstance, now time.Time) []scheduler.Attempt {
	if ti.Attempt == nil {
		return nil
	}
	prev := *ti.Attempt
	prev.XCom, prev.TickDueAt = "", nil
	prev.Rendered, prev.Error = clip(prev.Rendered, MaxPastText), clip(prev.Error, MaxPastText)
	if prev.State == scheduler.AttemptRunning || prev.State == "" {
		prev.State, prev.Error, prev.EndedAt = scheduler.AttemptFailed, "superseded: the task instance was cleared or marked while it ran", &now
	}
	past := append(append([]scheduler.Attempt(nil), ti.PastAttempts...), prev)
	if n := len(past) - scheduler.MaxPastAttempts; n > 0 {
		past = past[n:]
	}
	return past
}

// MaxPastText bounds, in bytes, the rendered arguments and the error each past attempt keeps.
// An instance's document, which Firestore caps at 1 MiB, holds up to MaxPastAttempts of them
// beside its latest attempt (with its XCom, up to 256 KiB): a sensor or a deferred job polled
// a hundred times with a 13 KB query in its arguments would otherwise fill it, and every later
// write of the instance (the next poke's claim, a result, a lost verdict) would be refused.
const MaxPastText = 1 << 10

// clip cuts s to at most n bytes (on a character boundary), saying how long it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(clipped from " + strconv.Itoa(len(s)) + " bytes)"
}

// AttemptsOf returns an instance's attempts, oldest first, each with the instance's update
// time (the latest with its tick_due_at).
func AttemptsOf(v *Versioned[scheduler.TaskInstance]) []Versioned[scheduler.Attempt] {
	out := make([]Versioned[scheduler.Attempt], 0, len(v.Rec.PastAttempts)+1)
	for _, a := range v.Rec.PastAttempts {
		out = append(out, Versioned[scheduler.Attempt]{Rec: a, UpdateTime: v.UpdateTime})
	}
	if a := v.Rec.Attempt; a != nil {
		cur := *a
		cur.TickDueAt = v.Rec.AttemptDueAt
		out = append(out, Versioned[scheduler.Attempt]{Rec: cur, UpdateTime: v.UpdateTime})
	}
	return out
}

// GetAttempt reads an attempt from its instance (ErrNotFound if the instance has none by
// that id).
func (s *Store) GetAttempt(ctx context.Context, ref scheduler.AttemptRef) (*Versioned[scheduler.Attempt], error) {
	v, err := s.GetTaskInstance(ctx, ref.DagID, ref.RunID, ref.TaskID)
	if err != nil {
		return nil, err
	}
	as := AttemptsOf(v)
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Rec.ID == ref.AttemptID {
			return &as[i], nil
		}
	}
	return nil, fmt.Errorf("fsstore: attempt %s of %s: %w", ref.AttemptID, v.Rec.Key(), ErrNotFound)
}

// ListAttempts reads the attempts of one task instance, oldest first (none if it has no
// document).
func (s *Store) ListAttempts(ctx context.Context, dagID, runID, taskID string) ([]Versioned[scheduler.Attempt], error) {
	v, err := s.GetTaskInstance(ctx, dagID, runID, taskID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return AttemptsOf(v), nil
}

// AttemptResult is a finished attempt's result as its worker records it.
type AttemptResult struct {
	State    scheduler.AttemptState
	EndedAt  time.Time
	Error    string
	Final    bool // a failure another try cannot fix
	ExitCode *int
	XCom     string // JSON; "" for none
	Rendered string
	// FollowUpAt is when the tick must finish what the worker may not have (nil: nothing is
	// left to it).
	FollowUpAt *time.Time
}

// fields are the result's writes on its instance's document.
func (r AttemptResult) fields() map[string]any {
	f := map[string]any{attemptPrefix + "state": string(r.State), attemptPrefix + "ended_at": r.EndedAt,
		attemptPrefix + "error": r.Error, "attempt_due_at": timeOrNil(r.FollowUpAt)}
	if r.ExitCode != nil {
		f[attemptPrefix+"exit_code"] = *r.ExitCode
	}
	if r.Final {
		f[attemptPrefix+"final"] = true
	}
	if r.XCom != "" {
		f[attemptPrefix+"xcom"] = r.XCom
	}
	if r.Rendered != "" {
		f[attemptPrefix+"rendered"] = boundRendered(r.Rendered)
	}
	return f
}

// MaxRenderedBytes bounds the rendered arguments an attempt keeps on its instance (with the
// XCom's own bound, the document stays under Firestore's 1 MiB).
const MaxRenderedBytes = 64 << 10

// boundRendered is rendered (JSON) if it fits MaxRenderedBytes, else a JSON object that says
// how large it was: a cut JSON text would not parse.
func boundRendered(rendered string) string {
	if len(rendered) <= MaxRenderedBytes {
		return rendered
	}
	return fmt.Sprintf(`{"_truncated": "the rendered arguments were %d bytes; at most %d are kept"}`, len(rendered), MaxRenderedBytes)
}

// RecordResult writes an attempt's result on its instance if the instance is unchanged since
// updateTime (the caller read it naming this attempt as its latest).
func (s *Store) RecordResult(ctx context.Context, ref scheduler.AttemptRef, updateTime time.Time, r AttemptResult) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(ref.DagID, ref.RunID, ref.TaskID), updateTime, r.fields())
}

// ApplyTransitionWithResult writes an attempt's result and its instance's transition in one
// write, if the instance is unchanged since updateTime.
func (s *Store) ApplyTransitionWithResult(ctx context.Context, ref scheduler.AttemptRef, updateTime time.Time, tr scheduler.Transition, r AttemptResult) (time.Time, error) {
	if tr.TaskID != ref.TaskID {
		return time.Time{}, fmt.Errorf("fsstore: the result of %s with a transition of %s", ref.AttemptID, tr.TaskID)
	}
	f := TransitionFields(tr)
	for k, v := range r.fields() {
		f[k] = v
	}
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(ref.DagID, ref.RunID, ref.TaskID), updateTime, f)
}

// RenewLease moves an attempt's lease (and the tick's look at it) to lease, if its instance is
// unchanged since updateTime.
func (s *Store) RenewLease(ctx context.Context, ref scheduler.AttemptRef, updateTime, lease time.Time) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(ref.DagID, ref.RunID, ref.TaskID), updateTime,
		map[string]any{attemptPrefix + "lease_expires_at": lease, "attempt_due_at": lease})
}

// SetFollowUp sets when the tick must look at an instance's latest attempt again (nil:
// never), if the instance is unchanged since updateTime.
func (s *Store) SetFollowUp(ctx context.Context, ref scheduler.AttemptRef, updateTime time.Time, at *time.Time) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(ref.DagID, ref.RunID, ref.TaskID), updateTime,
		map[string]any{"attempt_due_at": timeOrNil(at)})
}

// DueAttempts reads the latest attempts whose tick_due_at has passed (expired leases, and
// finished attempts whose worker did not confirm its follow-up), each with its instance's
// update time.
func (s *Store) DueAttempts(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.Attempt], error) {
	q := s.fs.Collection(ColTaskInstances).Where("attempt_due_at", "<=", now).OrderBy("attempt_due_at", firestore.Asc).Limit(limit)
	tis, err := queryAll[scheduler.TaskInstance](ctx, s, q, "due attempts")
	if err != nil {
		return nil, err
	}
	out := make([]Versioned[scheduler.Attempt], 0, len(tis))
	for i := range tis {
		if tis[i].Rec.Attempt == nil {
			continue
		}
		as := AttemptsOf(&tis[i])
		out = append(out, as[len(as)-1])
	}
	return out, nil
}

// Guarded is a transition with the update time its instance was read at. A zero UpdateTime
// means the instance has no document yet (it is `none`): the write then creates Base with
// the transition applied, preconditioned on the document not existing.
type Guarded struct {
	Transition scheduler.Transition
	UpdateTime time.Time
	Base       *scheduler.TaskInstance
}

// CommitFinish records an attempt's result with its own instance's transition (trs[0], on
// the instance the attempt belongs to) and applies the other transitions to task instances of
// its run, in one atomic commit, each write preconditioned on its document's update time: all
// of them, or none and ErrConflict. Each document written counts as one write.
func (s *Store) CommitFinish(ctx context.Context, ref scheduler.AttemptRef, r AttemptResult, trs []Guarded) error {
	if len(trs) == 0 || trs[0].Transition.TaskID != ref.TaskID {
		return fmt.Errorf("fsstore: commit the result of %s: the first transition must be its own instance's", ref.AttemptID)
	}
	if len(trs) > MaxBatch {
		return fmt.Errorf("fsstore: %d writes in one commit; at most %d", len(trs), MaxBatch)
	}
	b := s.fs.Batch() //nolint:staticcheck // an atomic commit of preconditioned writes, no transaction
	keys := make([]string, len(trs))
	for i, g := range trs {
		keys[i] = scheduler.TaskKey(ref.DagID, ref.RunID, g.Transition.TaskID)
		f := TransitionFields(g.Transition)
		if i == 0 {
			for k, v := range r.fields() {
				f[k] = v
			}
		} else if g.UpdateTime.IsZero() && g.Base != nil {
			doc, err := createdWith(g.Base, keys[i], f)
			if err != nil {
				return err
			}
			b.Create(s.fs.Collection(ColTaskInstances).Doc(keys[i]), doc)
			continue
		}
		b.Update(s.fs.Collection(ColTaskInstances).Doc(keys[i]), updates(f), firestore.LastUpdateTime(g.UpdateTime))
	}
	_, err := b.Commit(ctx)
	for _, k := range keys {
		s.wrote(ColTaskInstances, k, err)
	}
	return mapRace(fmt.Sprintf("fsstore: commit the result of %s", ref.AttemptID), err)
}

func updates(fields map[string]any) []firestore.Update {
	ups := make([]firestore.Update, 0, len(fields))
	for k, v := range fields {
		ups = append(ups, firestore.Update{Path: k, Value: v})
	}
	return ups
}
