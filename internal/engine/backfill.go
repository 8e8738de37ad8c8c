package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// BackfillRequest asks for a DAG's intervals with logical dates From..To (inclusive, dates in
// the DAG's timezone).
type BackfillRequest struct {
	DagID, From, To string
	Reprocess       string // none (default) | failed | completed
	MaxActiveRuns   int    // default: the DAG's max_active_runs
}

// maxBackfillIntervals bounds one backfill.
const maxBackfillIntervals = 10000

// StartBackfill records a backfill; the tick creates its runs. Starting the same range again
// while it runs returns the running one (existing is true).
func (e *Engine) StartBackfill(ctx context.Context, req BackfillRequest) (b *scheduler.Backfill, existing bool, err error) {
	if req.Reprocess == "" {
		req.Reprocess = scheduler.ReprocessNone
	}
	switch req.Reprocess {
	case scheduler.ReprocessNone, scheduler.ReprocessFailed, scheduler.ReprocessCompleted:
	default:
		return nil, false, fmt.Errorf("--reprocess must be none, failed or completed, not %q", req.Reprocess)
	}
	if req.MaxActiveRuns < 0 {
		return nil, false, fmt.Errorf("--max-active-runs must be at least 1, got %d", req.MaxActiveRuns)
	}
	v, err := e.store.GetDAG(ctx, req.DagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, false, fmt.Errorf("no DAG %q is deployed (see `updraft dags list`)", req.DagID)
	}
	if err != nil {
		return nil, false, err
	}
	spec, err := e.Spec(ctx, req.DagID, v.Rec.Version)
	if err != nil {
		return nil, false, err
	}
	if spec.Schedule == "" {
		return nil, false, fmt.Errorf("DAG %s has no schedule, so it has no intervals to backfill; use `updraft trigger %s --logical-date T`", spec.ID, spec.ID)
	}
	loc := spec.Location()
	from, err1 := time.ParseInLocation("2006-01-02", req.From, loc)
	to, err2 := time.ParseInLocation("2006-01-02", req.To, loc)
	if err1 != nil || err2 != nil {
		return nil, false, fmt.Errorf("--from and --to must be dates like 2025-01-31 (in the DAG's timezone %s)", spec.Timezone)
	}
	if to.Before(from) {
		return nil, false, fmt.Errorf("--from %s is after --to %s", req.From, req.To)
	}
	if spec.Start != nil && from.Before(dayOf(*spec.Start, loc)) {
		return nil, false, fmt.Errorf("--from %s is before the DAG's start %s", req.From, spec.Start.In(loc).Format("2006-01-02"))
	}
	if spec.End != nil && to.After(*spec.End) {
		return nil, false, fmt.Errorf("--to %s is after the DAG's end %s", req.To, spec.End.In(loc).Format("2006-01-02"))
	}
	tt, err := Timetable(spec, from)
	if err != nil {
		return nil, false, err
	}
	tt.Start, tt.End = from, nil
	first, ok := tt.First()
	total := 0
	for iv := first; ok && !dayOf(iv.Start, loc).After(to); iv, ok = tt.Following(iv) {
		if total++; total > maxBackfillIntervals {
			return nil, false, fmt.Errorf("the range holds more than %d intervals; split it", maxBackfillIntervals)
		}
	}
	if total == 0 {
		return nil, false, fmt.Errorf("no interval of %s (schedule %q) has a logical date from %s to %s", spec.ID, spec.Schedule, req.From, req.To)
	}
	if req.MaxActiveRuns == 0 {
		req.MaxActiveRuns = spec.MaxActiveRuns
	}
	now := e.now()
	b = &scheduler.Backfill{
		ID: req.DagID + "~" + req.From + "~" + req.To, DagID: req.DagID, From: req.From, To: req.To,
		Reprocess: req.Reprocess, MaxActiveRuns: req.MaxActiveRuns, State: scheduler.BackfillRunning, Total: total,
		Next: ptr(first.Start.UTC()), CreatedAt: now, TickDueAt: &now,
	}
	for range maxConflictRetries {
		err = e.store.CreateBackfill(ctx, b)
		if !errors.Is(err, fsstore.ErrExists) {
			break
		}
		var cur *fsstore.Versioned[scheduler.Backfill]
		if cur, err = e.store.GetBackfill(ctx, b.ID); err != nil {
			return nil, false, err
		}
		if cur.Rec.State == scheduler.BackfillRunning {
			return &cur.Rec, true, nil
		}
		// The same range ran before: start it again.
		// gen: its runs are counted apart from the earlier start's.
		_, err = e.store.RestartBackfillIf(ctx, b, cur.UpdateTime, max(cur.Rec.Gen, 1)+1, now)
		if err == nil {
			break
		}
		if !isConflict(err) {
			return nil, false, err
		}
	}
	if err != nil {
		return nil, false, err
	}
	bv, err := e.store.GetBackfill(ctx, b.ID)
	if err != nil {
		return nil, false, err
	}
	if err := e.advanceBackfill(ctx, bv, now); err != nil {
		return nil, false, err
	}
	if bv, err = e.store.GetBackfill(ctx, b.ID); err != nil {
		return nil, false, err
	}
	return &bv.Rec, false, nil
}

func dayOf(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// CancelBackfill stops a backfill from creating more runs; its runs in flight go on.
func (e *Engine) CancelBackfill(ctx context.Context, id string) error {
	for range maxConflictRetries {
		v, err := e.store.GetBackfill(ctx, id)
		if errors.Is(err, fsstore.ErrNotFound) {
			return fmt.Errorf("no backfill %q (see `updraft backfill status DAG`)", id)
		}
		if err != nil {
			return err
		}
		if v.Rec.State != scheduler.BackfillRunning {
			return nil
		}
		_, err = e.store.CancelBackfillIf(ctx, id, v.UpdateTime, e.now())
		if !isConflict(err) {
			return err
		}
	}
	return fmt.Errorf("engine: cancel backfill %s: too many concurrent changes", id)
}

// advanceBackfill creates (or re-runs, per its reprocess policy) the backfill's next runs,
// oldest first, while fewer than its max_active_runs are active; a running run is never
// touched. It ends the backfill when every interval was considered and none is active.
func (e *Engine) advanceBackfill(ctx context.Context, v *fsstore.Versioned[scheduler.Backfill], now time.Time) error {
	b := v.Rec
	if b.State != scheduler.BackfillRunning {
		_, err := e.store.ClearBackfillTickIf(ctx, b.ID, v.UpdateTime)
		if isConflict(err) {
			err = nil
		}
		return err
	}
	d, err := e.store.GetDAG(ctx, b.DagID)
	if err != nil {
		return err
	}
	spec, err := e.Spec(ctx, b.DagID, d.Rec.Version)
	if err != nil {
		return err
	}
	active, err := e.store.CountBackfillRuns(ctx, b.RunsKey(), []string{string(scheduler.RunQueued), string(scheduler.RunRunning)})
	if err != nil {
		return err
	}
	loc := spec.Location()
	to, _ := time.ParseInLocation("2006-01-02", b.To, loc)
	tt, err := Timetable(spec, now)
	if err != nil {
		return err
	}
	tt.End = nil
	for b.Next != nil && active < b.MaxActiveRuns {
		tt.Start = *b.Next
		iv, ok := tt.First()
		if !ok || dayOf(iv.Start, loc).After(to) {
			b.Next = nil
			break
		}
		started, err := e.backfillInterval(ctx, &b, d.Rec.Version, iv)
		if err != nil {
			return err
		}
		if started {
			active++
		}
		next, ok := tt.Following(iv)
		b.Next = nil
		if ok {
			b.Next = ptr(next.Start.UTC())
		}
	}
	_, err = e.store.SaveBackfillProgressIf(ctx, b.ID, v.UpdateTime, fsstore.BackfillProgress{
		Next: b.Next, Created: b.Created, Rerun: b.Rerun, Skipped: b.Skipped, TickDueAt: &now,
		Done: b.Next == nil && active == 0, EndedAt: now,
	})
	if isConflict(err) {
		return nil // cancelled or advanced meanwhile; runs it made are idempotent
	}
	return err
}

// backfillInterval handles one interval: create its run, re-run it, or leave it. It reports
// whether a run was started.
func (e *Engine) backfillInterval(ctx context.Context, b *scheduler.Backfill, version string, iv schedule.Interval) (bool, error) {
	runID := scheduler.RunID(scheduler.RunBackfill, iv.Start)
	cur, err := e.store.GetRun(ctx, b.DagID, runID)
	if errors.Is(err, fsstore.ErrNotFound) {
		_, err = e.CreateRun(ctx, NewRun{DagID: b.DagID, Version: version, Type: scheduler.RunBackfill, Logical: iv.Start,
			Interval: iv, BackfillID: b.RunsKey()})
		if errors.Is(err, ErrRunExists) { // the tick's scheduled run got there first
			b.Skipped++
			return false, nil
		}
		if err != nil {
			return false, err
		}
		b.Created++
		return true, nil
	}
	if err != nil {
		return false, err
	}
	r := cur.Rec
	rerun := r.State.Finished() && (b.Reprocess == scheduler.ReprocessCompleted ||
		(b.Reprocess == scheduler.ReprocessFailed && r.State == scheduler.RunFailed))
	if !rerun {
		b.Skipped++
		return false, nil
	}
	if _, err := e.store.SetRunBackfillIf(ctx, &r, cur.UpdateTime, b.RunsKey()); err != nil {
		if isConflict(err) { // changed under us: leave it this time
			b.Skipped++
			return false, nil
		}
		return false, err
	}
	if _, err := e.ClearRun(ctx, r.DagID, r.RunID); err != nil {
		return false, err
	}
	b.Rerun++
	return true, nil
}
