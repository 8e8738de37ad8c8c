package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// TriggerRequest asks for a run of a DAG from a task (dag.trigger).
type TriggerRequest struct {
	DagID   string
	Conf    map[string]any
	Logical time.Time
	// Interval is the run's data interval; nil infers it from Logical as a manual trigger does.
	Interval *schedule.Interval
	// By names who triggers (dag/run/task), for the log.
	By string
}

// ErrTriggerRefused marks a trigger that can't succeed as asked: the DAG is missing, removed
// or paused, or the conf does not fit its params. Another try won't help.
var ErrTriggerRefused = errors.New("trigger refused")

// TriggerRun starts a manual run of a DAG for a logical date, with a run id derived from the
// date (manual__<date>), so a redelivered or retried trigger finds the run it made instead
// of making another: created is false then. A DAG that is not deployed, was removed or is
// paused is refused with a clear error; conf is checked against the DAG's params.
func (e *Engine) TriggerRun(ctx context.Context, req TriggerRequest) (*scheduler.Run, bool, error) {
	v, err := e.store.GetDAG(ctx, req.DagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, false, fmt.Errorf("%w: no DAG %q is deployed (see `updraft dags list`)", ErrTriggerRefused, req.DagID)
	}
	if err != nil {
		return nil, false, err
	}
	switch {
	case !v.Rec.Active:
		return nil, false, fmt.Errorf("%w: DAG %q was removed (its file is gone); deploy it again to trigger it", ErrTriggerRefused, req.DagID)
	case v.Rec.Paused:
		return nil, false, fmt.Errorf("%w: DAG %q is paused: unpause it (`updraft dags unpause %s`) to let it be triggered", ErrTriggerRefused, req.DagID, req.DagID)
	}
	spec, err := e.Spec(ctx, req.DagID, v.Rec.Version)
	if err != nil {
		return nil, false, err
	}
	if err := CheckConf(spec, req.Conf); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrTriggerRefused, err)
	}
	iv := schedule.Interval{Start: req.Logical, End: req.Logical}
	if req.Interval != nil {
		iv = *req.Interval
	} else {
		tt, err := Timetable(spec, req.Logical)
		if err != nil {
			return nil, false, err
		}
		iv = tt.Infer(req.Logical)
	}
	runID := scheduler.RunID(scheduler.RunManual, req.Logical)
	r, err := e.CreateRun(ctx, NewRun{
		DagID: req.DagID, Version: v.Rec.Version, Type: scheduler.RunManual, RunID: runID, Logical: req.Logical, Interval: iv, Conf: req.Conf,
	})
	var exists *RunExistsError
	if errors.As(err, &exists) { // the date's run, whoever made it
		return &exists.Existing, false, nil
	}
	if errors.Is(err, ErrRunExists) {
		got, err := e.store.GetRun(ctx, req.DagID, runID)
		if err != nil {
			return nil, false, err
		}
		return &got.Rec, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	e.log.Info("run triggered", "dag_id", req.DagID, "run_id", runID, "by", req.By)
	return r, true, nil
}

// RunAt finds a DAG's run for a logical date: its scheduled or backfill run when there is
// one, else the latest manual run with that date; nil when there is none.
func (e *Engine) RunAt(ctx context.Context, dagID string, logical time.Time) (*scheduler.Run, error) {
	runs, err := e.store.RunsAt(ctx, dagID, logical)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	sort.Slice(runs, func(i, j int) bool {
		a, b := runs[i].Rec, runs[j].Rec
		if (a.RunType == scheduler.RunManual) != (b.RunType == scheduler.RunManual) {
			return b.RunType == scheduler.RunManual
		}
		return a.CreatedAt.After(b.CreatedAt)
	})
	return &runs[0].Rec, nil
}

// TaskState reads the state of one task in a run ("" when the run has no such task; `none`
// for one not started, whose instance has no document yet).
func (e *Engine) TaskState(ctx context.Context, dagID, runID, taskID string) (scheduler.TaskState, error) {
	v, err := e.TaskInstance(ctx, dagID, runID, taskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return v.Rec.State, nil
}
