package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// TickReport says what one tick did.
type TickReport struct {
	At          time.Time `json:"at"`
	DueDAGs     int       `json:"due_dags"`
	RunsCreated int       `json:"runs_created"`
	RunsStarted int       `json:"runs_started"`
	Republished int       `json:"republished"`
	Retried     int       `json:"retried"`
	Poked       int       `json:"poked"`
	LostWorkers int       `json:"lost_workers"`
	FollowedUp  int       `json:"followed_up"`
	// DeadLettered counts the dead-lettered messages the tick handled (SetDeadLetters).
	DeadLettered int `json:"dead_lettered"`
	// SkippedIntervals counts the intervals passed over without a run (catchup: false), and
	// LateDAGs the DAGs this tick reached more than one schedule period late.
	SkippedIntervals int `json:"skipped_intervals"`
	LateDAGs         int `json:"late_dags"`
	// RunsSwept counts running runs whose start lease or dagrun_timeout passed.
	RunsSwept int `json:"runs_swept"`
	// CreatedIn is how long the tick took to create the due runs (before starting them).
	CreatedIn time.Duration `json:"created_in_ns"`
	Reads     int64         `json:"reads"`
	Writes    int64         `json:"writes"`
	Duration  time.Duration `json:"duration_ns"`
	Errors    []string      `json:"errors,omitempty"`
}

// Tick does the work that waits on time: it creates the runs of due schedules, finishes
// starting runs whose creator died, republishes attempts nobody claimed, queues retries now
// due, fails attempts whose worker was lost, and finishes the follow-up of attempts whose
// worker died after recording its result, and (with SetDeadLetters) handles dead-lettered
// messages. Every query is an indexed range over a due-time field, so its cost grows with
// what is due, not with the number of DAGs. Errors on one item don't stop the others.
func (e *Engine) Tick(ctx context.Context) (TickReport, error) {
	start := time.Now()
	r0, w0 := e.store.Counts()
	now := e.now()
	rep := TickReport{At: now}
	fail := func(err error) { rep.Errors = append(rep.Errors, err.Error()) }

	// The due queries are independent: run them at once.
	var (
		g        errgroup.Group
		dags     []fsstore.Versioned[scheduler.DAGRecord]
		runs     []fsstore.Versioned[scheduler.Run]
		tis      []fsstore.Versioned[scheduler.TaskInstance]
		attempts []fsstore.Versioned[scheduler.Attempt]
		fills    []fsstore.Versioned[scheduler.Backfill]
	)
	g.Go(func() (err error) { dags, err = e.dueDAGs(ctx, now); return })
	g.Go(func() (err error) { runs, err = e.store.DueRuns(ctx, now, e.cfg.TickBatch); return })
	g.Go(func() (err error) { tis, err = e.store.DueTaskInstances(ctx, now, e.cfg.TickBatch); return })
	g.Go(func() (err error) { attempts, err = e.store.DueAttempts(ctx, now, e.cfg.TickBatch); return })
	g.Go(func() (err error) { fills, err = e.store.DueBackfills(ctx, now, e.cfg.TickBatch); return })
	if err := g.Wait(); err != nil {
		return rep, err
	}
	rep.DueDAGs = len(dags)
	// Due DAGs are independent: plan them concurrently, within a bound; then create all their
	// runs and move all their cursors in batched commits.
	var mu sync.Mutex
	created, err := e.scheduleDAGs(ctx, dags, now, &rep, fail)
	if err != nil {
		fail(err)
	}
	rep.CreatedIn = time.Since(start)
	// Then start them, as many at once: every due run exists before any start.
	var sg errgroup.Group
	sg.SetLimit(tickConcurrency)
	for i := range created {
		sg.Go(func() error {
			if err := e.startRun(ctx, &created[i]); err != nil {
				mu.Lock()
				fail(fmt.Errorf("engine: start run %s: %w (the tick starts it after its start grace)", created[i].Rec.Key(), err))
				mu.Unlock()
			}
			return nil
		})
	}
	_ = sg.Wait()
	var rg errgroup.Group
	rg.SetLimit(tickConcurrency)
	for i := range runs {
		rg.Go(func() error {
			err := e.tickRun(ctx, &runs[i], now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				fail(err)
			case runs[i].Rec.State == scheduler.RunQueued:
				rep.RunsStarted++
			case runs[i].Rec.State == scheduler.RunRunning:
				rep.RunsSwept++
			}
			return nil
		})
	}
	_ = rg.Wait()
	for i := range tis {
		kind, err := e.tickTask(ctx, &tis[i], now)
		if err != nil {
			fail(err)
		}
		switch kind {
		case "republished":
			rep.Republished++
		case "retried":
			rep.Retried++
		case "poked":
			rep.Poked++
		}
	}
	for i := range attempts {
		kind, err := e.tickAttempt(ctx, &attempts[i], now)
		if err != nil {
			fail(err)
		}
		switch kind {
		case "lost":
			rep.LostWorkers++
		case "followed":
			rep.FollowedUp++
		}
	}
	for i := range fills {
		if err := e.advanceBackfill(ctx, &fills[i], now); err != nil {
			fail(err)
		}
	}
	n, errs := e.drainDeadLetters(ctx)
	rep.DeadLettered = n
	for _, err := range errs {
		fail(err)
	}
	r1, w1 := e.store.Counts()
	rep.Reads, rep.Writes, rep.Duration = r1-r0, w1-w0, time.Since(start)
	return rep, nil
}

// tickConcurrency bounds the due DAGs (and due runs) one tick handles at once.
const tickConcurrency = 24

// dueDAGs reads every due DAG, in pages of TickBatch (up to tickMaxDAGs): a tick that
// stopped at one page would leave the rest a whole period late.
func (e *Engine) dueDAGs(ctx context.Context, now time.Time) ([]fsstore.Versioned[scheduler.DAGRecord], error) {
	var out []fsstore.Versioned[scheduler.DAGRecord]
	var last *fsstore.Versioned[scheduler.DAGRecord]
	for len(out) < tickMaxDAGs {
		page, err := e.store.DueDAGsAfter(ctx, now, e.cfg.TickBatch, last)
		if err != nil {
			return out, err
		}
		out = append(out, page...)
		if len(page) < e.cfg.TickBatch {
			break
		}
		last = &page[len(page)-1]
	}
	return out, nil
}

// tickMaxDAGs bounds the due DAGs one tick reads; the rest wait for the next tick.
const tickMaxDAGs = 20000

// dagPlan is what the tick will do for one due DAG: the runs to create and the cursor move.
type dagPlan struct {
	d      fsstore.Versioned[scheduler.DAGRecord]
	cur    schedule.Interval
	cron   string
	plan   scheduler.RunPlan
	runs   []*scheduler.Run
	cursor *fsstore.DAGCursor // the cursor move; nil: the cursor stays (no room under max_active_runs)
	late   time.Duration
	byTick bool // late because of the tick, not a deploy or an unpause
}

// scheduleDAGs creates the runs of the due DAGs (queued: the tick starts them next) and
// moves their cursors. Plans are made concurrently (one count of active runs each); the
// runs are created, and the cursors moved, in batched commits. A DAG is noted late when the
// tick reached it more than one schedule period after its interval ended, and the intervals
// it passed over without catchup are logged once and counted.
func (e *Engine) scheduleDAGs(ctx context.Context, dags []fsstore.Versioned[scheduler.DAGRecord], now time.Time, rep *TickReport, fail func(error)) ([]fsstore.Versioned[scheduler.Run], error) {
	plans := make([]*dagPlan, len(dags))
	var (
		g  errgroup.Group
		mu sync.Mutex
	)
	g.SetLimit(tickConcurrency)
	for i := range dags {
		g.Go(func() error {
			p, err := e.planDAG(ctx, dags[i], now)
			if err != nil {
				mu.Lock()
				fail(err)
				mu.Unlock()
			}
			plans[i] = p
			return nil
		})
	}
	_ = g.Wait()
	var all []*scheduler.Run
	for _, p := range plans {
		if p != nil {
			all = append(all, p.runs...)
		}
	}
	times, err := e.store.CreateRunsAtOnce(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("engine: create the due runs: %w", err)
	}
	var created []fsstore.Versioned[scheduler.Run]
	for i, r := range all {
		if !times[i].IsZero() {
			created = append(created, fsstore.Versioned[scheduler.Run]{Rec: *r, UpdateTime: times[i]})
		}
	}
	e.Stats.RunsCreated.Add(int64(len(created)))
	rep.RunsCreated += len(created)
	// Move the cursors: in atomic batches; a batch in which some DAG changed meanwhile is
	// redone one DAG at a time, each deciding again.
	var moves []*dagPlan
	for _, p := range plans {
		if p != nil && p.cursor != nil {
			moves = append(moves, p)
		}
	}
	for i := 0; i < len(moves); i += fsstore.MaxBatch {
		chunk := moves[i:min(i+fsstore.MaxBatch, len(moves))]
		ups := make([]fsstore.DAGUpdate, len(chunk))
		for j, p := range chunk {
			ups[j] = fsstore.CursorUpdate(p.d.Rec.DagID, p.d.UpdateTime, *p.cursor)
		}
		err := e.store.UpdateDAGsIf(ctx, ups)
		if err != nil && !isConflict(err) {
			return created, err
		}
		for _, p := range chunk {
			moved := err == nil
			if !moved {
				var merr error
				if moved, merr = e.moveCursor(ctx, p); merr != nil {
					fail(merr)
				}
			}
			if moved {
				e.noteSkips(ctx, p, rep)
			}
		}
	}
	return created, nil
}

// planDAG plans what the tick does for one due DAG (nil: nothing).
func (e *Engine) planDAG(ctx context.Context, d fsstore.Versioned[scheduler.DAGRecord], now time.Time) (*dagPlan, error) {
	rec := d.Rec
	cur, ok := cursorOf(&rec)
	if !ok {
		return nil, nil
	}
	spec, err := e.Spec(ctx, rec.DagID, rec.Version)
	if err != nil {
		return nil, err
	}
	tt, err := Timetable(spec, cur.Start)
	if err != nil {
		return nil, err
	}
	active, err := e.store.CountActiveRuns(ctx, rec.DagID)
	if err != nil {
		return nil, err
	}
	p := &dagPlan{d: d, cur: cur, cron: spec.Schedule, plan: scheduler.PlanRuns(tt, spec.Catchup, cur, now, spec.MaxActiveRuns-active)}
	for _, iv := range p.plan.Create {
		r, err := e.runDoc(ctx, NewRun{DagID: rec.DagID, Version: rec.Version, Type: scheduler.RunScheduled, Logical: iv.Start, Interval: iv})
		if err != nil {
			return nil, err
		}
		p.runs = append(p.runs, r)
	}
	if p.plan.Next != nil && p.plan.Next.Start.Equal(cur.Start) {
		return p, nil // waiting for room under max_active_runs: the cursor stays
	}
	rec.NextStart, rec.NextEnd = nil, nil
	if p.plan.Next != nil {
		rec.NextStart, rec.NextEnd = ptr(p.plan.Next.Start.UTC()), ptr(p.plan.Next.End.UTC())
	}
	rec.NextDueAt = dueAt(&rec)
	p.cursor = &fsstore.DAGCursor{NextStart: rec.NextStart, NextEnd: rec.NextEnd, NextDueAt: rec.NextDueAt}
	// Late: more than a period past the interval's end, and not because the DAG was deployed
	// or unpaused after it (then skipping to the latest is the rule, not a slow tick).
	p.late, p.byTick = now.Sub(cur.End), rec.UpdatedAt.Before(cur.End)
	if p.byTick && p.late > cur.End.Sub(cur.Start) && cur.End.After(cur.Start) {
		tl := &scheduler.TickLate{At: now.UTC(), By: p.late.Seconds(), Skipped: p.plan.Skipped}
		if p.plan.Skipped > 0 {
			tl.SkippedFrom, tl.SkippedTo = ptr(p.plan.SkippedFrom.Start.UTC()), ptr(p.plan.SkippedTo.Start.UTC())
		}
		p.cursor.TickLate = tl
	}
	return p, nil
}

// moveCursor moves one DAG's cursor after its batch lost a race: the DAG document changed
// since it was read, because another tick moved the cursor (the runs it made are the same
// runs) or something else wrote it (a run noted for the UI, a pause, a deploy). It moves the
// cursor only if it is still where this tick found it, on the same version and not paused.
func (e *Engine) moveCursor(ctx context.Context, p *dagPlan) (bool, error) {
	d := p.d
	ut := d.UpdateTime
	for range maxConflictRetries {
		v, err := e.store.GetDAG(ctx, d.Rec.DagID)
		if err != nil {
			return false, err
		}
		still, ok := cursorOf(&v.Rec)
		if !ok || !still.Start.Equal(p.cur.Start) || v.Rec.Version != d.Rec.Version || v.Rec.Paused != d.Rec.Paused || v.Rec.Active != d.Rec.Active {
			return false, nil
		}
		ut = v.UpdateTime
		_, err = e.store.MoveCursorIf(ctx, d.Rec.DagID, ut, *p.cursor)
		if err == nil {
			return true, nil
		}
		if !isConflict(err) {
			return false, err
		}
	}
	return false, fmt.Errorf("engine: move the schedule of %s: too many concurrent changes", d.Rec.DagID)
}

// noteSkips logs and counts, once (by the tick whose cursor move won), a DAG's late tick and
// the intervals it passed over.
func (e *Engine) noteSkips(ctx context.Context, p *dagPlan, rep *TickReport) {
	if p.cursor.TickLate != nil {
		e.Stats.LateTicks.Add(1)
		rep.LateDAGs++
	}
	if p.plan.Skipped == 0 {
		return
	}
	rep.SkippedIntervals += p.plan.Skipped
	e.Stats.SkippedIntervals.Add(int64(p.plan.Skipped))
	why := fmt.Sprintf("the tick came %s late", p.late.Round(time.Second))
	if !p.byTick {
		why = "the DAG was deployed or unpaused after them"
	}
	e.logEvent(ctx, slog.LevelWarn, LogEventIntervalsSkipped,
		fmt.Sprintf("%s: %d interval(s) skipped (catchup: false runs only the latest)", why, p.plan.Skipped),
		slog.String(LogKeyDagID, p.d.Rec.DagID), slog.String("schedule", p.cron), slog.Int("skipped", p.plan.Skipped),
		slog.Time("skipped_from", p.plan.SkippedFrom.Start.UTC()), slog.Time("skipped_to", p.plan.SkippedTo.Start.UTC()))
}

// tickTask handles a task instance whose tick_due_at passed.
func (e *Engine) tickTask(ctx context.Context, v *fsstore.Versioned[scheduler.TaskInstance], now time.Time) (string, error) {
	ti := v.Rec
	switch ti.State {
	case scheduler.TaskQueued:
		rc, err := e.loadRun(ctx, ti.DagID, ti.RunID)
		if err != nil {
			return "", err
		}
		task, ok := rc.task(ti.TaskID)
		if !ok {
			return "", fmt.Errorf("engine: run %s has no task %s", rc.run.Key(), ti.TaskID)
		}
		if _, err := e.store.SetTaskDeadline(ctx, ti.DagID, ti.RunID, ti.TaskID, v.UpdateTime, ptr(now.Add(e.cfg.RepublishAfter))); err != nil {
			if isConflict(err) {
				return "", nil // claimed or changed meanwhile
			}
			return "", err
		}
		e.Stats.Republished.Add(1)
		e.publishTask(ctx, task, scheduler.AttemptRef{
			DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, TryNumber: ti.TryNumber, AttemptID: ti.AttemptID,
		})
		return "republished", nil
	case scheduler.TaskScheduled: // waiting for a slot: try to fill the run's free ones
		rc, err := e.loadRun(ctx, ti.DagID, ti.RunID)
		if err != nil {
			return "", err
		}
		if _, err := e.store.SetTaskDeadline(ctx, ti.DagID, ti.RunID, ti.TaskID, v.UpdateTime, ptr(now.Add(e.cfg.RepublishAfter))); err != nil {
			if isConflict(err) {
				return "", nil
			}
			return "", err
		}
		return "", e.fillSlots(ctx, rc)
	case scheduler.TaskUpForRetry, scheduler.TaskUpForReschedule:
		rc, err := e.loadRun(ctx, ti.DagID, ti.RunID)
		if err != nil {
			return "", err
		}
		task, ok := rc.task(ti.TaskID)
		if !ok {
			return "", fmt.Errorf("engine: run %s has no task %s", rc.run.Key(), ti.TaskID)
		}
		err = e.queue(ctx, rc, task, v, ti.State == scheduler.TaskUpForRetry)
		if isConflict(err) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if ti.State == scheduler.TaskUpForReschedule {
			e.Stats.Poked.Add(1)
			return "poked", nil
		}
		e.Stats.Retried.Add(1)
		return "retried", nil
	default:
		_, err := e.store.SetTaskDeadline(ctx, ti.DagID, ti.RunID, ti.TaskID, v.UpdateTime, nil)
		if isConflict(err) {
			return "", nil
		}
		return "", err
	}
}

// tickRun handles a run whose tick_due_at passed: a queued run is started (its creator may
// have died half-way or its start event was lost), a running one has outlived its
// dagrun_timeout or its starter's lease (tickRunning).
func (e *Engine) tickRun(ctx context.Context, v *fsstore.Versioned[scheduler.Run], now time.Time) error {
	switch v.Rec.State {
	case scheduler.RunQueued:
		return e.startRun(ctx, v)
	case scheduler.RunRunning:
		return e.tickRunning(ctx, v, now)
	}
	_, err := e.store.ApplyRunChange(ctx, v.Rec.DagID, v.Rec.RunID, v.UpdateTime, scheduler.RunChange{TickDueAt: scheduler.To[*time.Time](nil)})
	if isConflict(err) {
		return nil
	}
	return err
}
