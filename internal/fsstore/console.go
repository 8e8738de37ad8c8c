package fsstore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/scheduler"
)

// The queries of the UI and the API (package console). Each page is one query (or one query
// per 30 keys, Firestore's bound on `in`), so a page costs the documents it shows and not one
// query per DAG or per task.

// inChunk is Firestore's bound on the values of one `in` filter.
const inChunk = 30

// billEmpty counts the one read Firestore bills for a query that returns nothing, so the
// read counts of these queries show their true cost (and a query per DAG would show).
func (s *Store) billEmpty(n int) {
	if n == 0 {
		s.read(1)
	}
}

// RecentRun is one of a DAG's latest runs as its DAG document keeps them (field
// recent_runs), so the DAG list reads one document per DAG and no runs.
type RecentRun struct {
	RunID       string    `firestore:"run_id" json:"run_id"`
	RunType     string    `firestore:"run_type" json:"run_type"`
	State       string    `firestore:"state" json:"state"`
	LogicalDate time.Time `firestore:"logical_date" json:"logical_date"`
}

// DAGListing is a DAG document with what the DAG list shows beyond its record: its latest
// runs (newest logical date first) when the engine keeps them (RecentKept).
type DAGListing struct {
	scheduler.DAGRecord
	Recent     []RecentRun `firestore:"recent_runs"`
	RecentKept bool        `firestore:"recent_kept"`
}

// GetDAGListing reads a DAG document with its latest runs.
func (s *Store) GetDAGListing(ctx context.Context, id string) (*Versioned[DAGListing], error) {
	return get[DAGListing](ctx, s, ColDAGs, id)
}

// DAGsPage reads up to limit DAGs, ordered by id, after the id `after` ("" from the first);
// with prefix set, only the ids that start with it (an indexed range).
func (s *Store) DAGsPage(ctx context.Context, prefix, after string, limit int) ([]Versioned[DAGListing], error) {
	q := s.fs.Collection(ColDAGs).Query
	if prefix != "" {
		q = q.Where("dag_id", ">=", prefix).Where("dag_id", "<", prefix+"\uf8ff")
	}
	q = q.OrderBy("dag_id", firestore.Asc)
	if after != "" {
		q = q.StartAfter(after)
	}
	out, err := queryAll[DAGListing](ctx, s, q.Limit(limit), "dags page")
	s.billEmpty(len(out))
	return out, err
}

// RecentRuns reads the latest runs of several DAGs, newest first: one query per 30 DAGs
// holding at most perDAG runs for each of them (so a DAG that runs often may crowd out the
// older runs of another in the same query; callers keep at most perDAG per DAG).
func (s *Store) RecentRuns(ctx context.Context, dagIDs []string, perDAG int) ([]scheduler.Run, error) {
	var out []scheduler.Run
	for i := 0; i < len(dagIDs); i += inChunk {
		chunk := dagIDs[i:min(i+inChunk, len(dagIDs))]
		q := s.fs.Collection(ColRuns).Where("dag_id", "in", chunk).OrderBy("logical_date", firestore.Desc).
			Select("dag_id", "run_id", "run_type", "state", "logical_date", "started_at", "ended_at").Limit(perDAG * len(chunk))
		vs, err := queryAll[scheduler.Run](ctx, s, q, "recent runs")
		if err != nil {
			return nil, err
		}
		s.billEmpty(len(vs))
		for _, v := range vs {
			out = append(out, v.Rec)
		}
	}
	return out, nil
}

// RunsPage reads up to limit runs of a DAG, newest logical date first, after the run whose
// key is afterKey ("" from the newest). The cursor is that run's document, so runs sharing a
// logical date are neither skipped nor repeated.
func (s *Store) RunsPage(ctx context.Context, dagID, afterKey string, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).OrderBy("logical_date", firestore.Desc)
	if afterKey != "" {
		snap, err := s.fs.Collection(ColRuns).Doc(afterKey).Get(ctx)
		s.read(1)
		if err != nil {
			return nil, mapErr("fsstore: runs page cursor "+afterKey, err)
		}
		q = q.StartAfter(snap)
	}
	out, err := queryAll[scheduler.Run](ctx, s, q.Limit(limit), "runs page of "+dagID)
	s.billEmpty(len(out))
	return out, err
}

// RunsBetween reads a DAG's runs with logical dates in [from, to], newest first, at most limit.
func (s *Store) RunsBetween(ctx context.Context, dagID string, from, to time.Time, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).Where("logical_date", ">=", from).
		Where("logical_date", "<=", to).OrderBy("logical_date", firestore.Desc).Limit(limit)
	return queryAll[scheduler.Run](ctx, s, q, "runs of "+dagID+" in range")
}

// GridInstances reads the task instances of several runs (by run key), leaving out the
// instances for_each tasks expanded to (their task carries map_count): one query per 30
// runs, with only the fields a grid shows.
func (s *Store) GridInstances(ctx context.Context, runKeys []string) ([]scheduler.TaskInstance, error) {
	var out []scheduler.TaskInstance
	for i := 0; i < len(runKeys); i += inChunk {
		chunk := runKeys[i:min(i+inChunk, len(runKeys))]
		q := s.fs.Collection(ColTaskInstances).Where("run_key", "in", chunk).Where("map_index", "==", nil).
			Select("dag_id", "run_id", "run_key", "task_id", "type", "state", "try_number", "attempt_id", "map_count")
		vs, err := queryAll[scheduler.TaskInstance](ctx, s, q, "grid instances")
		if err != nil {
			return nil, err
		}
		s.billEmpty(len(vs))
		for _, v := range vs {
			out = append(out, v.Rec)
		}
	}
	return out, nil
}

// RunAttempts reads every attempt of a run (for its Gantt chart).
func (s *Store) RunAttempts(ctx context.Context, dagID, runID string) ([]Versioned[scheduler.Attempt], error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", scheduler.RunKey(dagID, runID))
	tis, err := queryAll[scheduler.TaskInstance](ctx, s, q, "attempts of "+runID)
	if err != nil {
		return nil, err
	}
	var out []Versioned[scheduler.Attempt]
	for i := range tis {
		out = append(out, AttemptsOf(&tis[i])...)
	}
	sortAttempts(out)
	return out, nil
}

// VersionsOf reads several DAG versions in one call (keys are dag id and version); the
// versions that do not exist are left out.
func (s *Store) VersionsOf(ctx context.Context, keys [][2]string) ([]scheduler.DAGVersion, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	refs := make([]*firestore.DocumentRef, len(keys))
	for i, k := range keys {
		refs[i] = s.fs.Collection(ColDAGVersions).Doc(versionKey(k[0], k[1]))
	}
	snaps, err := s.fs.GetAll(ctx, refs)
	s.read(len(refs))
	if err != nil {
		return nil, mapErr("fsstore: get versions", err)
	}
	var out []scheduler.DAGVersion
	for _, snap := range snaps {
		if !snap.Exists() {
			continue
		}
		var v scheduler.DAGVersion
		if err := snap.DataTo(&v); err != nil {
			return nil, mapErr("fsstore: decode "+snap.Ref.Path, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// AuditPage reads up to limit audit entries, newest first (one DAG's when dagID is set),
// after the entry with id afterID ("" from the newest).
func (s *Store) AuditPage(ctx context.Context, dagID, afterID string, limit int) ([]AuditEntry, error) {
	q := s.fs.Collection(ColAudit).Query
	if dagID != "" {
		q = q.Where("dag_id", "==", dagID)
	}
	q = q.OrderBy("at", firestore.Desc)
	if afterID != "" {
		snap, err := s.fs.Collection(ColAudit).Doc(afterID).Get(ctx)
		s.read(1)
		if err != nil {
			return nil, mapErr("fsstore: audit page cursor "+afterID, err)
		}
		q = q.StartAfter(snap)
	}
	vs, err := queryAll[AuditEntry](ctx, s, q.Limit(limit), "audit page")
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(vs))
	for i, v := range vs {
		out[i] = v.Rec
	}
	return out, nil
}

// CellRec is one task's cell of the grid as a finished run's document keeps it (field
// cells), so the grid reads one document per finished run instead of one per task.
type CellRec struct {
	TaskID    string `firestore:"t" json:"t"`
	State     string `firestore:"s" json:"s"`
	Try       int    `firestore:"n" json:"n"`
	AttemptID string `firestore:"a" json:"a,omitempty"`
	MapCount  *int   `firestore:"m" json:"m,omitempty"`
}

// RunWithCells is a run document with the grid cells kept on it: valid while the run is
// finished with the state and end time they were kept at (a run cleared and finished again
// has a new end time).
type RunWithCells struct {
	scheduler.Run
	Cells        []CellRec  `firestore:"cells"`
	CellsState   string     `firestore:"cells_state"`
	CellsEndedAt *time.Time `firestore:"cells_ended_at"`
}

// CellsValid reports whether the cells kept are the run's current ones.
func (r *RunWithCells) CellsValid() bool {
	return r.State.Finished() && r.CellsState == string(r.State) && len(r.Cells) > 0 &&
		r.EndedAt != nil && r.CellsEndedAt != nil && r.EndedAt.Equal(*r.CellsEndedAt)
}

// KeepRunCells stores a finished run's cells on its document if it is unchanged since
// updateTime (ErrConflict otherwise).
func (s *Store) KeepRunCells(ctx context.Context, r *scheduler.Run, updateTime time.Time, cells []CellRec) error {
	_, err := s.updateIf(ctx, ColRuns, r.Key(), updateTime, map[string]any{
		"cells": cells, "cells_state": string(r.State), "cells_ended_at": r.EndedAt,
	})
	return err
}

// GridRunsPage is RunsPage with the cells finished runs keep.
func (s *Store) GridRunsPage(ctx context.Context, dagID, afterKey string, limit int) ([]Versioned[RunWithCells], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).OrderBy("logical_date", firestore.Desc)
	if afterKey != "" {
		snap, err := s.fs.Collection(ColRuns).Doc(afterKey).Get(ctx)
		s.read(1)
		if err != nil {
			return nil, mapErr("fsstore: grid page cursor "+afterKey, err)
		}
		q = q.StartAfter(snap)
	}
	out, err := queryAll[RunWithCells](ctx, s, q.Limit(limit), "grid runs of "+dagID)
	s.billEmpty(len(out))
	return out, err
}

// GetRunWithCells reads a run with the cells it keeps.
func (s *Store) GetRunWithCells(ctx context.Context, dagID, runID string) (*Versioned[RunWithCells], error) {
	return get[RunWithCells](ctx, s, ColRuns, scheduler.RunKey(dagID, runID))
}
