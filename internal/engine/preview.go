package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Previews of the operations, for the UI's and the API's confirmations: what an operation
// would touch, computed with the same rules the operation applies, without writing anything.

// ErrUnknownTask marks a task id the run's DAG version does not have.
var ErrUnknownTask = errors.New("unknown task")

// ErrNoRun marks a run that does not exist.
var ErrNoRun = errors.New("no such run")

// PreviewClear returns the ids ClearTasks would reset, in the DAG file's order (for_each
// instances named first), without writing: the same closure over downstream and upstream.
// Instances that are already waiting (state none) are included; ClearTasks leaves them be.
func (e *Engine) PreviewClear(ctx context.Context, dagID, runID string, taskIDs []string, downstream, upstream bool) ([]string, error) {
	rc, err := e.loadRun(ctx, dagID, runID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: DAG %s has no run %s", ErrNoRun, dagID, runID)
	}
	if err != nil {
		return nil, err
	}
	set, out, err := clearScope(rc, taskIDs, downstream, upstream)
	if err != nil {
		return nil, err
	}
	for _, t := range rc.spec.Tasks {
		if set[t.ID] {
			out = append(out, t.ID)
		}
	}
	return out, nil
}

// BackfillStep is what a backfill would do with one interval.
type BackfillStep struct {
	Logical time.Time
	RunID   string
	// Action is "create" (no run yet), "rerun" (its run is cleared per the reprocess policy) or
	// "skip" (its run stays: it is running, or the policy keeps it).
	Action string
	// State is the existing run's state ("" when there is none).
	State string
}

// PreviewBackfill returns, oldest first, what StartBackfill would do with each interval of
// the range as things stand, without writing. It checks the request as StartBackfill does.
func (e *Engine) PreviewBackfill(ctx context.Context, req BackfillRequest) ([]BackfillStep, error) {
	if req.Reprocess == "" {
		req.Reprocess = scheduler.ReprocessNone
	}
	switch req.Reprocess {
	case scheduler.ReprocessNone, scheduler.ReprocessFailed, scheduler.ReprocessCompleted:
	default:
		return nil, fmt.Errorf("reprocess must be none, failed or completed, not %q", req.Reprocess)
	}
	v, err := e.store.GetDAG(ctx, req.DagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("no DAG %q is deployed (see `updraft dags list`)", req.DagID)
	}
	if err != nil {
		return nil, err
	}
	spec, err := e.Spec(ctx, req.DagID, v.Rec.Version)
	if err != nil {
		return nil, err
	}
	if spec.Schedule == "" {
		return nil, fmt.Errorf("DAG %s has no schedule, so it has no intervals to backfill; trigger it with a logical date instead", spec.ID)
	}
	loc := spec.Location()
	from, err1 := time.ParseInLocation("2006-01-02", req.From, loc)
	to, err2 := time.ParseInLocation("2006-01-02", req.To, loc)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("from and to must be dates like 2025-01-31 (in the DAG's timezone %s)", spec.Timezone)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("from %s is after to %s", req.From, req.To)
	}
	if spec.Start != nil && from.Before(dayOf(*spec.Start, loc)) {
		return nil, fmt.Errorf("from %s is before the DAG's start %s", req.From, spec.Start.In(loc).Format("2006-01-02"))
	}
	if spec.End != nil && to.After(*spec.End) {
		return nil, fmt.Errorf("to %s is after the DAG's end %s", req.To, spec.End.In(loc).Format("2006-01-02"))
	}
	tt, err := Timetable(spec, from)
	if err != nil {
		return nil, err
	}
	tt.Start, tt.End = from, nil
	var steps []BackfillStep
	first, ok := tt.First()
	for iv := first; ok && !dayOf(iv.Start, loc).After(to); iv, ok = tt.Following(iv) {
		if len(steps) >= maxBackfillIntervals {
			return nil, fmt.Errorf("the range holds more than %d intervals; split it", maxBackfillIntervals)
		}
		steps = append(steps, BackfillStep{Logical: iv.Start.UTC(), RunID: scheduler.RunID(scheduler.RunBackfill, iv.Start), Action: "create"})
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("no interval of %s (schedule %q) has a logical date from %s to %s", spec.ID, spec.Schedule, req.From, req.To)
	}
	runs, err := e.store.RunsBetween(ctx, req.DagID, steps[0].Logical, steps[len(steps)-1].Logical, 4*maxBackfillIntervals)
	if err != nil {
		return nil, err
	}
	byDate := map[time.Time]scheduler.Run{}
	for _, r := range runs {
		if r.Rec.RunType != scheduler.RunManual {
			byDate[r.Rec.LogicalDate.UTC()] = r.Rec
		}
	}
	for i := range steps {
		r, ok := byDate[steps[i].Logical]
		if !ok {
			continue
		}
		steps[i].RunID, steps[i].State, steps[i].Action = r.RunID, string(r.State), "skip"
		if r.State.Finished() && (req.Reprocess == scheduler.ReprocessCompleted ||
			(req.Reprocess == scheduler.ReprocessFailed && r.State == scheduler.RunFailed)) {
			steps[i].Action = "rerun"
		}
	}
	return steps, nil
}
