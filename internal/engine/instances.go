package engine

import (
	"context"
	"errors"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Task instances are created lazily: a task of a run has a document only once it left
// `none` (queued, scheduled, skipped, upstream_failed, …), and the write that moves it is
// the document's creation (fsstore.ApplyTransitionOn and its batch forms). A missing
// document therefore means `none`, and the engine reads instances through the helpers here,
// which stand a `none` record built from the run's spec in for it, with a zero update time
// so that writing a transition on it creates it, preconditioned on its absence: two
// writers that both read it missing race as they would on an update, and the loser reads
// again. The instances of a for_each task's expansion (flow.go) are created when it expands,
// as before, and are not stood in for.

// noneInstance is the record of a task of the run's DAG as it is before it has a document:
// `none`, with what its first write creates it from. ok is false for an id that is not a
// task of the DAG (an expansion's instance, or a task the version does not have).
func (e *Engine) noneInstance(rc *runCtx, taskID string) (v *fsstore.Versioned[scheduler.TaskInstance], ok bool) {
	t, ok := rc.spec.Task(taskID)
	if !ok {
		return nil, false
	}
	ti := scheduler.TaskInstance{
		DagID: rc.run.DagID, RunID: rc.run.RunID, RunKey: rc.run.Key(), TaskID: t.ID, Type: t.Type,
		State: scheduler.TaskNone, MaxTries: t.Retries + 1, Downstream: rc.downstream[t.ID], ExpireAt: e.expireAt(e.now()),
	}
	if ti.Downstream == nil {
		ti.Downstream = []string{} // array-contains needs an array
	}
	return &fsstore.Versioned[scheduler.TaskInstance]{Rec: ti}, true
}

// instance reads a task instance of the run; a task of its DAG with no document is `none`
// (noneInstance). Anything else missing is fsstore.ErrNotFound.
func (e *Engine) instance(ctx context.Context, rc *runCtx, taskID string) (*fsstore.Versioned[scheduler.TaskInstance], error) {
	v, err := e.store.GetTaskInstance(ctx, rc.run.DagID, rc.run.RunID, taskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		if none, ok := e.noneInstance(rc, taskID); ok {
			return none, nil
		}
	}
	return v, err
}

// TaskInstance reads one task instance of a run. A task of the run's DAG that has not left
// `none` has no document: it reads as a `none` record with a zero update time (the run is
// read then, to tell it from a task the run's DAG does not have, which is
// fsstore.ErrNotFound, as is a run that does not exist).
func (e *Engine) TaskInstance(ctx context.Context, dagID, runID, taskID string) (*fsstore.Versioned[scheduler.TaskInstance], error) {
	v, err := e.store.GetTaskInstance(ctx, dagID, runID, taskID)
	if !errors.Is(err, fsstore.ErrNotFound) {
		return v, err
	}
	rc, rerr := e.loadRun(ctx, dagID, runID)
	switch {
	case errors.Is(rerr, fsstore.ErrNotFound):
		return nil, err
	case rerr != nil:
		return nil, rerr
	}
	if none, ok := e.noneInstance(rc, taskID); ok {
		return none, nil
	}
	return nil, err
}

// instances reads some task instances of the run in batched reads, by task id; tasks of its
// DAG with no document are `none` (noneInstance), other ids with none are absent.
func (e *Engine) instances(ctx context.Context, rc *runCtx, ids []string) (map[string]*fsstore.Versioned[scheduler.TaskInstance], error) {
	out := make(map[string]*fsstore.Versioned[scheduler.TaskInstance], len(ids))
	for i := 0; i < len(ids); i += getBatch {
		got, err := e.store.GetTaskInstances(ctx, rc.run.DagID, rc.run.RunID, ids[i:min(i+getBatch, len(ids))])
		if err != nil {
			return nil, err
		}
		for k, v := range got {
			out[k] = v
		}
	}
	for _, id := range ids {
		if out[id] == nil {
			if none, ok := e.noneInstance(rc, id); ok {
				out[id] = none
			}
		}
	}
	return out, nil
}

// listInstances reads all of a run's task instances: those stored (with an expansion's
// instances), then a `none` one for each task of its DAG that has no document, in the DAG's
// order.
func (e *Engine) listInstances(ctx context.Context, rc *runCtx) ([]fsstore.Versioned[scheduler.TaskInstance], error) {
	tis, err := e.store.ListTaskInstances(ctx, rc.run.DagID, rc.run.RunID)
	if err != nil {
		return nil, err
	}
	return e.withNone(rc, tis), nil
}

// RunInstances reads all of a run's task instances: those stored (with the instances of
// for_each expansions), then a `none` record for each task of its DAG with no document, in
// the DAG's order.
func (e *Engine) RunInstances(ctx context.Context, r scheduler.Run) ([]fsstore.Versioned[scheduler.TaskInstance], error) {
	rc, err := e.runCtxOf(ctx, r, time.Time{})
	if err != nil {
		return nil, err
	}
	return e.listInstances(ctx, rc)
}

// withNone adds to a run's stored instances a `none` one for each task of its DAG that has
// no document.
func (e *Engine) withNone(rc *runCtx, tis []fsstore.Versioned[scheduler.TaskInstance]) []fsstore.Versioned[scheduler.TaskInstance] {
	have := make(map[string]bool, len(tis))
	for _, v := range tis {
		have[v.Rec.TaskID] = true
	}
	for _, t := range rc.spec.Tasks {
		if !have[t.ID] {
			none, _ := e.noneInstance(rc, t.ID)
			tis = append(tis, *none)
		}
	}
	return tis
}

// applyTo writes one transition on a task instance as read (or stood in for: a zero update
// time creates it), and tells the recorder.
func (e *Engine) applyTo(ctx context.Context, v *fsstore.Versioned[scheduler.TaskInstance], tr scheduler.Transition) (time.Time, error) {
	ut, err := e.store.ApplyTransitionOn(ctx, v, tr)
	if err == nil {
		e.applied(v.Rec.DagID, v.Rec.RunID, tr)
	}
	return ut, err
}
