package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// One run per (DAG, logical date), whatever made it: scheduled, backfill and manual runs of a
// date share one document id (scheduler.RunKey), so the second create fails with AlreadyExists
// and no lock or query decides it. These name the run that holds the date, and replace it.

// RunExistsError is ErrRunExists naming the run that already holds the logical date.
type RunExistsError struct {
	// Existing is the run holding the date (its id may differ from the one asked for:
	// a manual trigger finds the scheduled run of that date).
	Existing scheduler.Run
}

func (e *RunExistsError) Error() string {
	r := e.Existing
	return fmt.Sprintf("%v: DAG %s already has a run for logical date %s: %s/%s (%s); one run per DAG and logical date",
		ErrRunExists, r.DagID, r.LogicalDate.UTC().Format(time.RFC3339Nano), r.DagID, r.RunID, r.State)
}

// Is makes errors.Is(err, ErrRunExists) true.
func (e *RunExistsError) Is(target error) bool { return target == ErrRunExists }

// runExists is the error for a create of r that found its document taken: a RunExistsError
// when the run holding it can be read, else ErrRunExists with r's name.
func (e *Engine) runExists(ctx context.Context, r *scheduler.Run) error {
	v, err := e.store.GetRun(ctx, r.DagID, r.RunID)
	if err != nil {
		return fmt.Errorf("%w: %s/%s", ErrRunExists, r.DagID, r.RunID)
	}
	return &RunExistsError{Existing: v.Rec}
}

// ErrRunActive refuses to replace a run that is queued or running.
var ErrRunActive = errors.New("engine: the run is still queued or running")

// DeleteRunAt deletes a DAG's runs for a logical date, with their task instances and
// attempts, so that a new run can take the date (`trigger --replace`, and `updraft test`
// rerunning a test DAG for the same date). A queued or running run is refused with
// ErrRunActive unless force is set (only for test DAGs, whose runs nobody else watches). It
// returns the runs it deleted.
func (e *Engine) DeleteRunAt(ctx context.Context, dagID string, logical time.Time, force bool) ([]scheduler.Run, error) {
	runs, err := e.store.RunsAt(ctx, dagID, logical)
	if err != nil {
		return nil, err
	}
	var deleted []scheduler.Run
	for i := range runs {
		v := &runs[i]
		if !v.Rec.State.Finished() && !force {
			return deleted, fmt.Errorf("%w: %s/%s is %s; wait for it, or mark its tasks, before replacing it",
				ErrRunActive, v.Rec.DagID, v.Rec.RunID, v.Rec.State)
		}
		if _, _, err := e.store.DeleteRunTree(ctx, &v.Rec, v.UpdateTime, cleanBatch); err != nil {
			if errors.Is(err, fsstore.ErrNotFound) {
				continue
			}
			return deleted, fmt.Errorf("engine: replace %s/%s: %w", v.Rec.DagID, v.Rec.RunID, err)
		}
		deleted = append(deleted, v.Rec)
	}
	if len(deleted) > 0 {
		if err := e.RebuildRecentRuns(ctx, dagID); err != nil && !errors.Is(err, fsstore.ErrNotFound) {
			return deleted, err
		}
	}
	return deleted, nil
}
