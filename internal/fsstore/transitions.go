package fsstore

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// A task instance that has not left `none` has no document: the engine holds a record built
// from the run's spec with a zero update time instead. A write on such a record creates the
// document (the record with the write's fields over it), preconditioned on its absence, so
// the first transition is the instance's only write; a writer that loses the race to create
// it gets ErrConflict, as one that loses an update does, and reads again.

// ApplyTransitionOn writes a transition on the task instance v: an update preconditioned on
// v's update time, or, when v.UpdateTime is zero (v was never stored), the creation of v.Rec
// with the transition applied, preconditioned on the document not existing. Either way a
// lost race is ErrConflict. It returns the new update time.
func (s *Store) ApplyTransitionOn(ctx context.Context, v *Versioned[scheduler.TaskInstance], tr scheduler.Transition) (time.Time, error) {
	if !v.UpdateTime.IsZero() {
		return s.ApplyTransition(ctx, v.Rec.DagID, v.Rec.RunID, v.UpdateTime, tr)
	}
	key := scheduler.TaskKey(v.Rec.DagID, v.Rec.RunID, tr.TaskID)
	doc, err := createdWith(&v.Rec, key, TransitionFields(tr))
	if err != nil {
		return time.Time{}, err
	}
	res, err := s.fs.Collection(ColTaskInstances).Doc(key).Create(ctx, doc)
	s.wrote(ColTaskInstances, key, err)
	if err != nil {
		return time.Time{}, mapRace(fmt.Sprintf("fsstore: create %s/%s", ColTaskInstances, key), err)
	}
	return res.UpdateTime, nil
}

// createdWith is the document a first write on a task instance creates: base's fields by
// name with fields over them. base must carry its expire_at, and be the instance named key.
func createdWith(base *scheduler.TaskInstance, key string, fields map[string]any) (map[string]any, error) {
	if base.Key() != key {
		return nil, fmt.Errorf("fsstore: create %s/%s from the record of %s", ColTaskInstances, key, base.Key())
	}
	if err := needExpiry(ColTaskInstances, key, base.ExpireAt); err != nil {
		return nil, err
	}
	doc := recordFields(base)
	for k, v := range fields {
		doc[k] = v
	}
	return doc, nil
}

// recordFields returns a record's fields by their firestore names, as Create writes them.
func recordFields(rec any) map[string]any {
	v := reflect.Indirect(reflect.ValueOf(rec))
	t := v.Type()
	out := make(map[string]any, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("firestore"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		out[name] = v.Field(i).Interface()
	}
	return out
}

// mapRace is mapErr for writes that may create a task instance: a document created by
// someone else since it was read missing is a lost race, ErrConflict, like a stale update.
func mapRace(op string, err error) error {
	if status.Code(err) == codes.AlreadyExists {
		return fmt.Errorf("%s: %w", op, ErrConflict)
	}
	return mapErr(op, err)
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
