package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
)

// TaskDuration is how long a task's last try in a run ran, from its start to its end (the
// template function `duration`). ok is false when the task has no finished try: it never
// started (skipped, upstream_failed), or is still queued or running.
func (e *Engine) TaskDuration(ctx context.Context, dagID, runID, taskID string) (d time.Duration, ok bool, err error) {
	ti, err := e.TaskInstance(ctx, dagID, runID, taskID) // a task not started yet is `none`: no try
	if errors.Is(err, fsstore.ErrNotFound) {
		return 0, false, fmt.Errorf("duration: run %s/%s has no task %q", dagID, runID, taskID)
	}
	if err != nil {
		return 0, false, err
	}
	r := ti.Rec
	if r.StartedAt == nil || r.EndedAt == nil || r.EndedAt.Before(*r.StartedAt) {
		return 0, false, nil
	}
	return r.EndedAt.Sub(*r.StartedAt), true, nil
}
