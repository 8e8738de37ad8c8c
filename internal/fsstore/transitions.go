package fsstore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/scheduler"
)

// Typed writes: the engine hands the store scheduler.Transitions and typed results, and the
// store alone turns them into Firestore field names.

// stateFields are a task state and its counters for aggregation queries, by field name.
// StateFields returns the state and its counter fields for a move to s, by field name, so
// every writer keeps the counters consistent with the state.
func StateFields(s scheduler.TaskState) map[string]any {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return map[string]any{
		"state":             string(s),
		"finished":          b(s.Finished()),
		"bad":               b(s.Bad()),
		"c_success":         b(s == scheduler.TaskSuccess),
		"c_failed":          b(s == scheduler.TaskFailed),
		"c_upstream_failed": b(s == scheduler.TaskUpstreamFailed),
		"c_skipped":         b(s == scheduler.TaskSkipped),
		"c_active":          b(s == scheduler.TaskQueued || s == scheduler.TaskRunning),
	}
}

func stateFields(s scheduler.TaskState) map[string]any { return StateFields(s) }

// TransitionFields returns the fields a transition writes on a task instance, by name.
func TransitionFields(tr scheduler.Transition) map[string]any {
	f := stateFields(tr.To)
	set := tr.Set
	put := func(name string, ok bool, v any) {
		if ok {
			f[name] = v
		}
	}
	put("try_number", set.TryNumber.Set, set.TryNumber.V)
	put("attempt_id", set.AttemptID.Set, set.AttemptID.V)
	put("queued_at", set.QueuedAt.Set, timeOrNil(set.QueuedAt.V))
	put("started_at", set.StartedAt.Set, timeOrNil(set.StartedAt.V))
	put("ended_at", set.EndedAt.Set, timeOrNil(set.EndedAt.V))
	put("tick_due_at", set.TickDueAt.Set, timeOrNil(set.TickDueAt.V))
	put("sensor_started_at", set.SensorStartedAt.Set, timeOrNil(set.SensorStartedAt.V))
	put("error", set.Error.Set, set.Error.V)
	put("job", set.Job.Set, set.Job.V)
	put("follow", set.Follow.Set, set.Follow.V)
	if set.HoldsSlot.Set {
		f["c_active"] = 0
		if set.HoldsSlot.V {
			f["c_active"] = 1
		}
	}
	put("try_base", set.TryBase.Set, set.TryBase.V)
	put("max_tries", set.MaxTries.Set, set.MaxTries.V)
	if set.MapCount.Set {
		if set.MapCount.V == nil {
			f["map_count"] = nil
		} else {
			f["map_count"] = *set.MapCount.V
		}
	}
	return f
}

// timeOrNil keeps a nil *time.Time an untyped nil, which Firestore stores as null.
func timeOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return *t
}

// ApplyTransition writes a transition on a task instance of a run if the instance is
// unchanged since updateTime (else ErrConflict: read again and decide again). It returns the
// new update time.
func (s *Store) ApplyTransition(ctx context.Context, dagID, runID string, updateTime time.Time, tr scheduler.Transition) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(dagID, runID, tr.TaskID), updateTime, TransitionFields(tr))
}

// AttemptResult is a finished attempt's result as its worker records it.
type AttemptResult struct {
	State    scheduler.AttemptState
	EndedAt  time.Time
	Error    string
	ExitCode *int
	XCom     string // JSON; "" for none
	Rendered string
	// FollowUpAt is when the tick must finish what the worker may not have (nil: nothing is
	// left to it).
	FollowUpAt *time.Time
}

func (r AttemptResult) fields() map[string]any {
	f := map[string]any{"state": string(r.State), "ended_at": r.EndedAt, "error": r.Error, "tick_due_at": timeOrNil(r.FollowUpAt)}
	if r.ExitCode != nil {
		f["exit_code"] = *r.ExitCode
	}
	if r.XCom != "" {
		f["xcom"] = r.XCom
	}
	if r.Rendered != "" {
		f["rendered"] = r.Rendered
	}
	return f
}

// RecordResult writes an attempt's result if the attempt is unchanged since updateTime.
func (s *Store) RecordResult(ctx context.Context, attemptID string, updateTime time.Time, r AttemptResult) (time.Time, error) {
	return s.updateIf(ctx, ColAttempts, attemptID, updateTime, r.fields())
}

// Guarded is a transition with the update time its instance was read at.
type Guarded struct {
	Transition scheduler.Transition
	UpdateTime time.Time
}

// CommitFinish records an attempt's result and applies transitions to task instances of its
// run in one atomic commit, each write preconditioned on its document's update time: all of
// them, or none and ErrConflict. Each document written still counts as one write.
func (s *Store) CommitFinish(ctx context.Context, ref scheduler.AttemptRef, attemptTime time.Time, r AttemptResult, trs []Guarded) error {
	if len(trs)+1 > MaxBatch {
		return fmt.Errorf("fsstore: %d writes in one commit; at most %d", len(trs)+1, MaxBatch)
	}
	b := s.fs.Batch() //nolint:staticcheck // an atomic commit of preconditioned writes, no transaction
	b.Update(s.fs.Collection(ColAttempts).Doc(ref.AttemptID), updates(r.fields()), firestore.LastUpdateTime(attemptTime))
	keys := make([]string, len(trs))
	for i, g := range trs {
		keys[i] = scheduler.TaskKey(ref.DagID, ref.RunID, g.Transition.TaskID)
		b.Update(s.fs.Collection(ColTaskInstances).Doc(keys[i]), updates(TransitionFields(g.Transition)), firestore.LastUpdateTime(g.UpdateTime))
	}
	_, err := b.Commit(ctx)
	s.wrote(ColAttempts, ref.AttemptID, err)
	for _, k := range keys {
		s.wrote(ColTaskInstances, k, err)
	}
	return mapErr(fmt.Sprintf("fsstore: commit the result of %s", ref.AttemptID), err)
}

func updates(fields map[string]any) []firestore.Update {
	ups := make([]firestore.Update, 0, len(fields))
	for k, v := range fields {
		ups = append(ups, firestore.Update{Path: k, Value: v})
	}
	return ups
}

// RenewLease moves an attempt's lease (and the tick's look at it) to lease, if the attempt is
// unchanged since updateTime.
func (s *Store) RenewLease(ctx context.Context, attemptID string, updateTime, lease time.Time) (time.Time, error) {
	return s.updateIf(ctx, ColAttempts, attemptID, updateTime, map[string]any{"lease_expires_at": lease, "tick_due_at": lease})
}

// SetFollowUp sets when the tick must look at an attempt again (nil: never), if the attempt
// is unchanged since updateTime.
func (s *Store) SetFollowUp(ctx context.Context, attemptID string, updateTime time.Time, at *time.Time) (time.Time, error) {
	return s.updateIf(ctx, ColAttempts, attemptID, updateTime, map[string]any{"tick_due_at": timeOrNil(at)})
}

// RunChangeFields returns the fields a run change writes, by name.
func RunChangeFields(ch scheduler.RunChange) map[string]any {
	f := map[string]any{}
	if ch.State.Set {
		f["state"] = string(ch.State.V)
	}
	for name, o := range map[string]scheduler.Opt[*time.Time]{"started_at": ch.StartedAt, "ended_at": ch.EndedAt,
		"tick_due_at": ch.TickDueAt, "timeout_at": ch.TimeoutAt} {
		if o.Set {
			f[name] = timeOrNil(o.V)
		}
	}
	return f
}

// ApplyRunChange writes a change on a run if it is unchanged since updateTime (else
// ErrConflict) and returns the new update time.
func (s *Store) ApplyRunChange(ctx context.Context, dagID, runID string, updateTime time.Time, ch scheduler.RunChange) (time.Time, error) {
	return s.updateIf(ctx, ColRuns, scheduler.RunKey(dagID, runID), updateTime, RunChangeFields(ch))
}

// SetTaskDeadline moves when the tick looks at a task instance again (nil: never), its state
// unchanged, if the instance is unchanged since updateTime.
func (s *Store) SetTaskDeadline(ctx context.Context, dagID, runID, taskID string, updateTime time.Time, at *time.Time) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(dagID, runID, taskID), updateTime, map[string]any{"tick_due_at": timeOrNil(at)})
}

// SaveTaskJob saves the external job a deferred task submitted (engine.JobRef as JSON) on its
// instance, if the instance is unchanged since updateTime.
func (s *Store) SaveTaskJob(ctx context.Context, dagID, runID, taskID string, updateTime time.Time, job string) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, scheduler.TaskKey(dagID, runID, taskID), updateTime, map[string]any{"job": job})
}
