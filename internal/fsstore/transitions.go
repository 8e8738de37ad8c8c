package fsstore

import (
	"context"
	"time"

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
