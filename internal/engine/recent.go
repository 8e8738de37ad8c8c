package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// RecentRunsKept is how many of its latest runs a DAG document keeps in recent_runs, for the
// DAG list: it then reads one document per DAG, and no runs.
const RecentRunsKept = 10

// NoteRun keeps what the UI reads of a run where it reads it cheaply: the run's state in its
// DAG document's recent_runs (newest logical date first, at most RecentRunsKept), and, once
// the run has finished, its grid cells on its own document (dropped when it runs again).
// Call it after a run is created, after every change of its state, and after a task of a
// finished run is marked (the run's state may stay the same); it reads the run's state
// itself, so a late call records the latest state. It writes only what changes:
// about two writes per run on the DAG document (created, finished), one on the run's (its
// finish), well under Firestore's sustained rate for one document. A DAG that is not
// deployed is not an error.
func (e *Engine) NoteRun(ctx context.Context, dagID, runID string) error {
	v, err := e.store.GetRun(ctx, dagID, runID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := e.noteRecent(ctx, v.Rec); err != nil {
		return err
	}
	return e.keepCells(ctx, dagID, v.Rec.RunID)
}

// noteRun is NoteRun for the engine's own run transitions: best effort, since what it keeps
// is for the UI's reads, and a run's progress must never wait on it (the UI falls back to
// reading the runs while a DAG's recent_runs is not kept).
func (e *Engine) noteRun(ctx context.Context, dagID, runID string) {
	if err := e.NoteRun(ctx, dagID, runID); err != nil {
		e.log.Warn("could not note the run for the UI", "dag_id", dagID, "run_id", runID, "error", err)
	}
}

func (e *Engine) noteRecent(ctx context.Context, r scheduler.Run) error {
	entry := fsstore.RecentRun{RunID: r.RunID, RunType: string(r.RunType), State: string(r.State), LogicalDate: r.LogicalDate.UTC()}
	for range maxConflictRetries {
		v, err := e.store.GetDAGListing(ctx, r.DagID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		next, changed := mergeRecent(v.Rec.Recent, entry)
		if !changed && v.Rec.RecentKept {
			return nil
		}
		_, err = e.store.SetRecentRunsIf(ctx, r.DagID, v.UpdateTime, next)
		if isConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("engine: note run %s: too many concurrent changes", r.Key())
}

// mergeRecent puts entry into the list (replacing its run's entry), newest first, at most
// RecentRunsKept; changed is false when the list stays the same.
func mergeRecent(cur []fsstore.RecentRun, entry fsstore.RecentRun) ([]fsstore.RecentRun, bool) {
	out := make([]fsstore.RecentRun, 0, len(cur)+1)
	for _, c := range cur {
		if c.RunID == entry.RunID {
			if c.State == entry.State && c.RunType == entry.RunType && c.LogicalDate.Equal(entry.LogicalDate) {
				return cur, false
			}
			continue
		}
		out = append(out, c)
	}
	out = append(out, entry)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].LogicalDate.Equal(out[j].LogicalDate) {
			return out[i].LogicalDate.After(out[j].LogicalDate)
		}
		return out[i].RunID > out[j].RunID
	})
	if len(out) > RecentRunsKept {
		if out[RecentRunsKept].RunID == entry.RunID && len(cur) >= RecentRunsKept {
			return cur, false // older than every run kept
		}
		out = out[:RecentRunsKept]
	}
	return out, true
}

// RebuildRecentRuns sets a DAG document's recent_runs from its runs (for DAGs deployed
// before the engine kept them, or after a repair); NoteRun keeps it current from then on.
func (e *Engine) RebuildRecentRuns(ctx context.Context, dagID string) error {
	for range maxConflictRetries {
		v, err := e.store.GetDAG(ctx, dagID)
		if err != nil {
			return err
		}
		runs, err := e.store.ListRuns(ctx, dagID, RecentRunsKept)
		if err != nil {
			return err
		}
		list := make([]fsstore.RecentRun, 0, len(runs))
		for _, r := range runs {
			list = append(list, fsstore.RecentRun{RunID: r.Rec.RunID, RunType: string(r.Rec.RunType), State: string(r.Rec.State), LogicalDate: r.Rec.LogicalDate.UTC()})
		}
		_, err = e.store.SetRecentRunsIf(ctx, dagID, v.UpdateTime, list)
		if isConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("engine: rebuild the recent runs of %s: too many concurrent changes", dagID)
}

// RefreshRunCells keeps a finished run's grid cells on its document (one read of its task
// instances, once per finish), or drops them from a run that is no longer finished. NoteRun
// calls it; call it alone after marking a task of a finished run.
func (e *Engine) RefreshRunCells(ctx context.Context, dagID, runID string) error {
	return e.keepCells(ctx, dagID, runID)
}

func (e *Engine) keepCells(ctx context.Context, dagID, runID string) error {
	for range maxConflictRetries {
		v, err := e.store.GetRunWithCells(ctx, dagID, runID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !v.Rec.State.Finished() {
			if v.Rec.CellsState == "" {
				return nil
			}
			_, err = e.store.DropRunCellsIf(ctx, &v.Rec.Run, v.UpdateTime)
		} else {
			rc, lerr := e.runCtxOf(ctx, v.Rec.Run, v.UpdateTime)
			if lerr != nil {
				return lerr
			}
			tis, lerr := e.listInstances(ctx, rc) // a task never started (no document) is a `none` cell
			if lerr != nil {
				return lerr
			}
			cells := make([]fsstore.CellRec, 0, len(tis))
			for _, ti := range tis {
				if ti.Rec.MapIndex != nil {
					continue // for_each instances: their task's cell counts them
				}
				cells = append(cells, fsstore.CellRec{TaskID: ti.Rec.TaskID, State: string(ti.Rec.State), Try: ti.Rec.TryNumber,
					AttemptID: ti.Rec.AttemptID, MapCount: ti.Rec.MapCount})
			}
			err = e.store.KeepRunCells(ctx, &v.Rec.Run, v.UpdateTime, cells)
		}
		if isConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("engine: keep the cells of %s/%s: too many concurrent changes", dagID, runID)
}
