package fsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/scheduler"
)

// MaxBatch bounds the writes of one UpdateTaskInstancesIf (Firestore commits at most 500).
const MaxBatch = 400

// GetTaskInstances reads some task instances of a run in one round trip, by task id; those
// that do not exist are absent from the map.
func (s *Store) GetTaskInstances(ctx context.Context, dagID, runID string, taskIDs []string) (map[string]*Versioned[scheduler.TaskInstance], error) {
	refs := make([]*firestore.DocumentRef, len(taskIDs))
	for i, id := range taskIDs {
		refs[i] = s.fs.Collection(ColTaskInstances).Doc(scheduler.TaskKey(dagID, runID, id))
	}
	snaps, err := s.fs.GetAll(ctx, refs)
	s.read(len(refs))
	if err != nil {
		return nil, mapErr(fmt.Sprintf("fsstore: get %d task instances of %s", len(refs), runID), err)
	}
	out := make(map[string]*Versioned[scheduler.TaskInstance], len(snaps))
	for i, snap := range snaps {
		if !snap.Exists() {
			continue
		}
		var v Versioned[scheduler.TaskInstance]
		if err := snap.DataTo(&v.Rec); err != nil {
			return nil, fmt.Errorf("fsstore: decode %s: %w", snap.Ref.Path, err)
		}
		v.UpdateTime = snap.UpdateTime
		out[taskIDs[i]] = &v
	}
	return out, nil
}

// TaskInstanceUpdate is one conditional change of UpdateTaskInstancesIf.
type TaskInstanceUpdate struct {
	TI *scheduler.TaskInstance
	// UpdateTime is when the instance was read: it must be unchanged since. Zero means it has
	// no document yet (it is `none`): the change then creates TI with Fields applied,
	// preconditioned on the document not existing.
	UpdateTime time.Time
	Fields     map[string]any
}

// UpdateTaskInstancesIf applies conditional changes to several task instances in one atomic
// commit (at most MaxBatch): all of them, or none and ErrConflict when any instance changed
// since it was read (or, for one read missing, was created since). It takes no lock, like
// every other write here.
func (s *Store) UpdateTaskInstancesIf(ctx context.Context, ups []TaskInstanceUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	if len(ups) > MaxBatch {
		return fmt.Errorf("fsstore: %d updates in one batch; at most %d", len(ups), MaxBatch)
	}
	// An atomic commit of preconditioned writes: what a batch is for, and no transaction
	// (which would read and lock).
	b := s.fs.Batch() //nolint:staticcheck // see above
	for _, u := range ups {
		if u.UpdateTime.IsZero() {
			doc, err := createdWith(u.TI, u.TI.Key(), u.Fields)
			if err != nil {
				return err
			}
			b.Create(s.fs.Collection(ColTaskInstances).Doc(u.TI.Key()), doc)
			continue
		}
		fu := make([]firestore.Update, 0, len(u.Fields))
		for k, v := range u.Fields {
			fu = append(fu, firestore.Update{Path: k, Value: v})
		}
		b.Update(s.fs.Collection(ColTaskInstances).Doc(u.TI.Key()), fu, firestore.LastUpdateTime(u.UpdateTime))
	}
	_, err := b.Commit(ctx)
	for _, u := range ups {
		s.wrote(ColTaskInstances, u.TI.Key(), err)
	}
	return mapRace(fmt.Sprintf("fsstore: update %d task instances", len(ups)), err)
}

// DueDAGsAfter is DueDAGs from the page after the DAG last (nil: the first page), in
// next_due_at then id order, so a tick can read every due DAG in pages.
func (s *Store) DueDAGsAfter(ctx context.Context, now time.Time, limit int, last *Versioned[scheduler.DAGRecord]) ([]Versioned[scheduler.DAGRecord], error) {
	q := s.fs.Collection(ColDAGs).Where("next_due_at", "<=", now).OrderBy("next_due_at", firestore.Asc).
		OrderBy("__name__", firestore.Asc).Limit(limit) // firestore.DocumentID, spelled out for infra's index check
	if last != nil && last.Rec.NextDueAt != nil {
		q = q.StartAfter(*last.Rec.NextDueAt, last.Rec.DagID)
	}
	return queryAll[scheduler.DAGRecord](ctx, s, q, "due dags")
}

// CreateRunAt is CreateRun returning the new document's update time, for the conditional
// write that starts it.
func (s *Store) CreateRunAt(ctx context.Context, r *scheduler.Run) (time.Time, error) {
	if err := needExpiry(ColRuns, r.Key(), r.ExpireAt); err != nil {
		return time.Time{}, err
	}
	res, err := s.fs.Collection(ColRuns).Doc(r.Key()).Create(ctx, r)
	s.wrote(ColRuns, r.Key(), err)
	if err != nil {
		return time.Time{}, mapErr(fmt.Sprintf("fsstore: create %s/%s", ColRuns, r.Key()), err)
	}
	return res.UpdateTime, nil
}

// CreateRunsAtOnce creates runs in atomic commits of up to MaxBatch and returns each one's
// update time, in order. A commit that finds one of its runs already there (another tick
// made it) is redone one run at a time: then a zero update time marks a run that existed.
func (s *Store) CreateRunsAtOnce(ctx context.Context, runs []*scheduler.Run) ([]time.Time, error) {
	out := make([]time.Time, len(runs))
	for i := 0; i < len(runs); i += MaxBatch {
		chunk := runs[i:min(i+MaxBatch, len(runs))]
		b := s.fs.Batch() //nolint:staticcheck // an atomic commit of creates, no transaction
		for _, r := range chunk {
			if err := needExpiry(ColRuns, r.Key(), r.ExpireAt); err != nil {
				return out, err
			}
			b.Create(s.fs.Collection(ColRuns).Doc(r.Key()), r)
		}
		res, err := b.Commit(ctx)
		for _, r := range chunk {
			s.wrote(ColRuns, r.Key(), err)
		}
		if err == nil {
			for j := range chunk {
				out[i+j] = res[j].UpdateTime
			}
			continue
		}
		if !errors.Is(mapErr("", err), ErrExists) {
			return out, mapErr(fmt.Sprintf("fsstore: create %d runs", len(chunk)), err)
		}
		for j, r := range chunk {
			ut, err := s.CreateRunAt(ctx, r)
			if errors.Is(err, ErrExists) {
				continue
			}
			if err != nil {
				return out, err
			}
			out[i+j] = ut
		}
	}
	return out, nil
}

// DAGUpdate is one conditional change of UpdateDAGsIf.
type DAGUpdate struct {
	DagID      string
	UpdateTime time.Time
	Fields     map[string]any
}

// UpdateDAGsIf applies conditional changes to DAG documents in one atomic commit (at most
// MaxBatch): all, or none and ErrConflict when any changed since read.
func (s *Store) UpdateDAGsIf(ctx context.Context, ups []DAGUpdate) error {
	if len(ups) == 0 {
		return nil
	}
	if len(ups) > MaxBatch {
		return fmt.Errorf("fsstore: %d updates in one batch; at most %d", len(ups), MaxBatch)
	}
	b := s.fs.Batch() //nolint:staticcheck // an atomic commit of preconditioned writes
	for _, u := range ups {
		fu := make([]firestore.Update, 0, len(u.Fields))
		for k, v := range u.Fields {
			fu = append(fu, firestore.Update{Path: k, Value: v})
		}
		b.Update(s.fs.Collection(ColDAGs).Doc(u.DagID), fu, firestore.LastUpdateTime(u.UpdateTime))
	}
	_, err := b.Commit(ctx)
	for _, u := range ups {
		s.wrote(ColDAGs, u.DagID, err)
	}
	return mapErr(fmt.Sprintf("fsstore: update %d DAGs", len(ups)), err)
}
