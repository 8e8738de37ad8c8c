package fsstore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/updraft-dev/updraft/scheduler"
)

// Retention on demand (`updraft db clean`): on GCP Firestore's TTL deletes runs, task
// instances and attempts after their expire_at; these do the same for runs before a date,
// locally (the emulator has no TTL) or at once.

// RunsBefore reads up to limit runs whose logical date is before before, in logical-date
// order (then by document id), starting after the run after (nil: from the first). Paging
// with after reads each run once, whatever the caller did with the ones it skipped.
func (s *Store) RunsBefore(ctx context.Context, before time.Time, after *scheduler.Run, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("logical_date", "<", before).OrderBy("logical_date", firestore.Asc).OrderBy("__name__", firestore.Asc)
	if after != nil {
		q = q.StartAfter(after.LogicalDate, after.Key())
	}
	return queryAll[scheduler.Run](ctx, s, q.Limit(limit), "runs before "+before.UTC().Format(time.RFC3339))
}

// CountRunChildren counts a run's task instances and attempts (what DeleteRunTree would
// delete with it).
func (s *Store) CountRunChildren(ctx context.Context, dagID, runID string) (tis, attempts int, err error) {
	tq := s.fs.Collection(ColTaskInstances).Where("run_key", "==", scheduler.RunKey(dagID, runID))
	res, err := tq.NewAggregationQuery().WithCount("n").WithSum("attempt_count", "attempts").Get(ctx)
	s.read(1)
	if err != nil {
		return 0, 0, mapErr("fsstore: count task instances of "+runID, err)
	}
	return intOf(res.Data()["n"]), intOf(res.Data()["attempts"]), nil
}

// count runs a count aggregation whose result is named "n".
func (s *Store) count(ctx context.Context, q *firestore.AggregationQuery, what string) (int, error) {
	res, err := q.Get(ctx)
	s.read(1)
	if err != nil {
		return 0, mapErr("fsstore: count "+what, err)
	}
	return intOf(res.Data()["n"]), nil
}

// DeleteRunTree deletes a run, then its task instances (with their attempts), batch documents
// at a time (memory stays bounded whatever the run's size). The run goes first, and only if
// it is unchanged since updateTime (ErrConflict otherwise: someone cleared or marked it
// meanwhile, so it is kept, children and all); from then on nothing can change its
// children. A run deleted by an interrupted call leaves children that no run names; on GCP
// their own expire_at removes them.
func (s *Store) DeleteRunTree(ctx context.Context, r *scheduler.Run, updateTime time.Time, batch int) (tis, attempts int, err error) {
	// The attempts live on their instances: count them before anything goes.
	if _, attempts, err = s.CountRunChildren(ctx, r.DagID, r.RunID); err != nil {
		return 0, 0, err
	}
	ref := s.fs.Collection(ColRuns).Doc(r.Key())
	_, err = ref.Delete(ctx, firestore.LastUpdateTime(updateTime))
	s.wrote(ColRuns, r.Key(), err)
	if err != nil {
		return 0, 0, mapErr("fsstore: delete run "+r.Key(), err)
	}
	tq := s.fs.Collection(ColTaskInstances).Where("run_key", "==", r.Key())
	tis, err = s.deleteAll(ctx, tq, ColTaskInstances, batch)
	return tis, attempts, err
}

// deleteAll deletes what a query matches, a page of batch documents at a time, reading only
// the documents' names.
func (s *Store) deleteAll(ctx context.Context, q firestore.Query, col string, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	deleted := 0
	for {
		var refs []*firestore.DocumentRef
		it := q.Select().Limit(batch).Documents(ctx)
		for {
			snap, err := it.Next()
			if err == iterator.Done {
				break
			}
			if err != nil {
				it.Stop()
				return deleted, mapErr("fsstore: list "+col+" to delete", err)
			}
			s.read(1)
			refs = append(refs, snap.Ref)
		}
		it.Stop()
		if len(refs) == 0 {
			return deleted, nil
		}
		bw := s.fs.BulkWriter(ctx)
		jobs := make([]*firestore.BulkWriterJob, 0, len(refs))
		for _, ref := range refs {
			j, err := bw.Delete(ref)
			if err != nil {
				bw.End()
				return deleted, fmt.Errorf("fsstore: delete %s: %w", ref.Path, err)
			}
			jobs = append(jobs, j)
		}
		bw.End()
		for i, j := range jobs {
			_, err := j.Results()
			s.wrote(col, refs[i].ID, err)
			if err != nil {
				return deleted, mapErr("fsstore: delete "+col+"/"+refs[i].ID, err)
			}
			deleted++
		}
		if len(refs) < batch {
			return deleted, nil
		}
	}
}
