package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// CleanReport says what CleanRuns deleted (or, in a dry run, would delete).
type CleanReport struct {
	Before        time.Time `json:"before"`
	DryRun        bool      `json:"dry_run"`
	Runs          int       `json:"runs"`
	TaskInstances int       `json:"task_instances"`
	Attempts      int       `json:"attempts"`
	// Unfinished counts the runs before the date that are queued or running: they are kept
	// (clean again once they have finished). Skipped names the first of them (DAG/RUN_ID).
	Unfinished int      `json:"unfinished"`
	Skipped    []string `json:"skipped,omitempty"`
	// Changed counts the runs that changed while being cleaned (cleared, marked): kept.
	Changed int `json:"changed"`
}

// cleanBatch bounds the documents one page of CleanRuns reads or deletes.
const cleanBatch = 200

// maxSkippedListed bounds how many unfinished runs a CleanReport names.
const maxSkippedListed = 100

// CleanRuns deletes the finished runs whose logical date is before before, with their task
// instances and attempts (what Firestore's TTL does on GCP after the retention, on demand
// and on the emulators, which have no TTL). Unfinished runs are kept and counted. A dry run
// counts without deleting. It pages through the runs, so memory stays bounded; progress,
// if not nil, is called after each run it deleted or counted. The DAGs whose runs it
// deleted get their recent runs rebuilt, so the DAG list names no deleted run.
func (e *Engine) CleanRuns(ctx context.Context, before time.Time, dryRun bool, progress func(CleanReport)) (CleanReport, error) {
	rep := CleanReport{Before: before.UTC(), DryRun: dryRun}
	if before.After(e.now()) {
		return rep, fmt.Errorf("engine: clean before %s: that is in the future; name a past date", before.UTC().Format(time.RFC3339))
	}
	var after *scheduler.Run
	dags := map[string]bool{} // DAGs whose runs were deleted (one entry per DAG: bounded)
	for {
		page, err := e.store.RunsBefore(ctx, before, after, cleanBatch)
		if err != nil {
			return rep, err
		}
		for i := range page {
			v := &page[i]
			if !v.Rec.State.Finished() {
				rep.Unfinished++
				if len(rep.Skipped) < maxSkippedListed {
					rep.Skipped = append(rep.Skipped, v.Rec.DagID+"/"+v.Rec.RunID)
				}
				continue
			}
			if dryRun {
				tis, as, err := e.store.CountRunChildren(ctx, v.Rec.DagID, v.Rec.RunID)
				if err != nil {
					return rep, err
				}
				rep.Runs, rep.TaskInstances, rep.Attempts = rep.Runs+1, rep.TaskInstances+tis, rep.Attempts+as
			} else {
				tis, as, err := e.store.DeleteRunTree(ctx, &v.Rec, v.UpdateTime, cleanBatch)
				switch {
				case errors.Is(err, fsstore.ErrConflict):
					rep.Changed++ // cleared or marked since the read: kept
					continue
				case errors.Is(err, fsstore.ErrNotFound):
					continue // deleted by someone else meanwhile
				}
				rep.TaskInstances, rep.Attempts = rep.TaskInstances+tis, rep.Attempts+as
				if err != nil {
					return rep, err
				}
				rep.Runs++
				dags[v.Rec.DagID] = true
			}
			if progress != nil {
				progress(rep)
			}
		}
		if len(page) < cleanBatch {
			break
		}
		after = &page[len(page)-1].Rec
	}
	for id := range dags {
		if err := e.RebuildRecentRuns(ctx, id); err != nil && !errors.Is(err, fsstore.ErrNotFound) {
			return rep, fmt.Errorf("engine: runs deleted, but the DAG list's recent runs of %s were not rebuilt: %w", id, err)
		}
	}
	return rep, nil
}
