package fsstore

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

// Typed changes for the documents the engine writes outside the task state machine (which goes
// through ApplyTransition and its kin): the DAG's schedule cursor and recent runs, a backfill's
// progress, a run's backfill and grid cells, a dispatch record. Field names stay here.

// DAGCursor is where the tick moves a DAG's schedule cursor: the next interval and when it is
// due; TickLate is set when the tick reached the DAG more than a period late.
type DAGCursor struct {
	NextStart, NextEnd, NextDueAt *time.Time
	TickLate                      *scheduler.TickLate
}

func (c DAGCursor) fields() map[string]any {
	f := map[string]any{"next_start": c.NextStart, "next_end": c.NextEnd, "next_due_at": c.NextDueAt}
	if c.TickLate != nil {
		f["tick_late"] = c.TickLate
	}
	return f
}

// CursorUpdate is a DAGUpdate (for UpdateDAGsIf) that moves a DAG's cursor.
func CursorUpdate(dagID string, updateTime time.Time, c DAGCursor) DAGUpdate {
	return DAGUpdate{DagID: dagID, UpdateTime: updateTime, Fields: c.fields()}
}

// MoveCursorIf moves a DAG's schedule cursor if the DAG is unchanged since updateTime.
func (s *Store) MoveCursorIf(ctx context.Context, dagID string, updateTime time.Time, c DAGCursor) (time.Time, error) {
	return s.UpdateDAGIf(ctx, dagID, updateTime, c.fields())
}

// SetRecentRunsIf replaces a DAG's list of recent runs (the DAGs page's dots) if the DAG is
// unchanged since updateTime, and marks the list as kept up to date.
func (s *Store) SetRecentRunsIf(ctx context.Context, dagID string, updateTime time.Time, runs []RecentRun) (time.Time, error) {
	return s.UpdateDAGIf(ctx, dagID, updateTime, map[string]any{"recent_runs": runs, "recent_kept": true})
}

// BackfillProgress is what one pass of a backfill moved: its next interval and counts; Done
// ends it at EndedAt. TickDueAt is when the tick looks at it again (nil: never).
type BackfillProgress struct {
	Next                    *time.Time
	Created, Rerun, Skipped int
	TickDueAt               *time.Time
	Done                    bool
	EndedAt                 time.Time
}

// SaveBackfillProgressIf records a backfill's progress if it is unchanged since updateTime.
func (s *Store) SaveBackfillProgressIf(ctx context.Context, id string, updateTime time.Time, p BackfillProgress) (time.Time, error) {
	f := map[string]any{"next": p.Next, "created": p.Created, "rerun": p.Rerun, "skipped": p.Skipped, "tick_due_at": p.TickDueAt}
	if p.Done {
		f["state"], f["ended_at"], f["tick_due_at"] = scheduler.BackfillDone, p.EndedAt, nil
	}
	return s.UpdateBackfillIf(ctx, id, updateTime, f)
}

// ClearBackfillTickIf stops the tick from looking at a backfill (one no longer running) if it
// is unchanged since updateTime.
func (s *Store) ClearBackfillTickIf(ctx context.Context, id string, updateTime time.Time) (time.Time, error) {
	return s.UpdateBackfillIf(ctx, id, updateTime, map[string]any{"tick_due_at": nil})
}

// SetRunBackfillIf makes a backfill the owner of a run it re-runs, if the run is unchanged
// since updateTime.
func (s *Store) SetRunBackfillIf(ctx context.Context, r *scheduler.Run, updateTime time.Time, backfillKey string) (time.Time, error) {
	return s.UpdateRunIf(ctx, r, updateTime, map[string]any{"backfill_id": backfillKey})
}

// DropRunCellsIf forgets the grid cells kept on a run that runs again, if the run is
// unchanged since updateTime.
func (s *Store) DropRunCellsIf(ctx context.Context, r *scheduler.Run, updateTime time.Time) (time.Time, error) {
	return s.UpdateRunIf(ctx, r, updateTime, map[string]any{"cells": nil, "cells_state": "", "cells_ended_at": nil})
}

// SetDispatchErrorIf records why an attempt's execution could not start, if its dispatch
// record is unchanged since updateTime.
func (s *Store) SetDispatchErrorIf(ctx context.Context, attemptID string, updateTime time.Time, msg string) (time.Time, error) {
	return s.UpdateDispatchIf(ctx, attemptID, updateTime, map[string]any{"error": msg})
}

// SetDispatchExecutionIf records the execution started for an attempt, if its dispatch
// record is unchanged since updateTime.
func (s *Store) SetDispatchExecutionIf(ctx context.Context, attemptID string, updateTime time.Time, name string) (time.Time, error) {
	return s.UpdateDispatchIf(ctx, attemptID, updateTime, map[string]any{"execution": name})
}

// RestartBackfillIf starts a backfill of a range that ran before again, as b describes it
// (its counts reset, gen the next generation so its runs are counted apart from the earlier
// start's), if it is unchanged since updateTime.
func (s *Store) RestartBackfillIf(ctx context.Context, b *scheduler.Backfill, updateTime time.Time, gen int, now time.Time) (time.Time, error) {
	return s.UpdateBackfillIf(ctx, b.ID, updateTime, map[string]any{
		"reprocess": b.Reprocess, "max_active_runs": b.MaxActiveRuns, "state": b.State, "total": b.Total,
		"next": b.Next, "created": 0, "rerun": 0, "skipped": 0, "created_at": now, "ended_at": nil, "tick_due_at": now,
		"gen": gen,
	})
}

// CancelBackfillIf ends a running backfill as cancelled at now, if it is unchanged since
// updateTime.
func (s *Store) CancelBackfillIf(ctx context.Context, id string, updateTime, now time.Time) (time.Time, error) {
	return s.UpdateBackfillIf(ctx, id, updateTime, map[string]any{
		"state": scheduler.BackfillCancelled, "ended_at": now, "tick_due_at": nil,
	})
}

// DAGRecordFields are the fields a deploy writes of a DAG's record.
func DAGRecordFields(rec *scheduler.DAGRecord) map[string]any {
	return map[string]any{
		"version": rec.Version, "file": rec.File, "owner": rec.Owner, "schedule": rec.Schedule,
		"timezone": rec.Timezone, "paused": rec.Paused, "active": rec.Active,
		"next_start": rec.NextStart, "next_end": rec.NextEnd, "next_due_at": rec.NextDueAt,
		"updated_at": rec.UpdatedAt,
	}
}

// DeactivateDAGIf marks a DAG whose file is gone inactive (nothing is due), if it is unchanged
// since updateTime.
func (s *Store) DeactivateDAGIf(ctx context.Context, dagID string, updateTime, now time.Time) (time.Time, error) {
	return s.UpdateDAGIf(ctx, dagID, updateTime, map[string]any{"active": false, "next_due_at": nil, "updated_at": now})
}

// SetPausedIf pauses or unpauses a DAG, with when it is next due, if it is unchanged since
// updateTime.
func (s *Store) SetPausedIf(ctx context.Context, dagID string, updateTime time.Time, paused bool, nextDue *time.Time, now time.Time) (time.Time, error) {
	return s.UpdateDAGIf(ctx, dagID, updateTime, map[string]any{"paused": paused, "next_due_at": nextDue, "updated_at": now})
}

// RestartDispatchIf marks an attempt's execution as starting again (the earlier one ended
// without claiming it), if its dispatch record is unchanged since updateTime.
func (s *Store) RestartDispatchIf(ctx context.Context, attemptID string, updateTime, now time.Time, starts int) (time.Time, error) {
	return s.UpdateDispatchIf(ctx, attemptID, updateTime, map[string]any{
		"execution": "", "starting_at": now, "starts": starts, "error": "",
	})
}

// ReleaseDispatchIf lets the next delivery of an attempt start its execution at once (a start
// that failed in a way another try may fix), recording why, if the dispatch record is
// unchanged since updateTime.
func (s *Store) ReleaseDispatchIf(ctx context.Context, attemptID string, updateTime time.Time, why string) (time.Time, error) {
	return s.UpdateDispatchIf(ctx, attemptID, updateTime, map[string]any{"starting_at": time.Time{}, "error": why})
}

// SetSLADueIf sets when a run's SLA is next checked (nil: never), if the run is unchanged
// since updateTime.
func (s *Store) SetSLADueIf(ctx context.Context, r *scheduler.Run, updateTime time.Time, next *time.Time) (time.Time, error) {
	return s.UpdateRunIf(ctx, r, updateTime, map[string]any{"sla_due_at": next})
}
