package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// runCtx is a run with its DAG version, loaded once per operation.
type runCtx struct {
	run        scheduler.Run
	runTime    time.Time // update time the run was read at
	spec       *dag.DAG
	downstream map[string][]string
	limited    bool // max_active_tasks can bind (see slots.go)
}

func (e *Engine) loadRun(ctx context.Context, dagID, runID string) (*runCtx, error) {
	v, err := e.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	return e.runCtxOf(ctx, v.Rec, v.UpdateTime)
}

func (e *Engine) runCtxOf(ctx context.Context, r scheduler.Run, ut time.Time) (*runCtx, error) {
	spec, err := e.Spec(ctx, r.DagID, r.Version)
	if err != nil {
		return nil, err
	}
	return e.newRunCtx(r, ut, spec), nil
}

// shape is what a run's context derives from its DAG version's spec: the same for every run
// of the version, so computed once per version (it showed as 6% of a fan-out's CPU when
// recomputed per operation). Both are read-only once made.
type shape struct {
	downstream map[string][]string
	limited    bool
}

func (e *Engine) newRunCtx(r scheduler.Run, ut time.Time, spec *dag.DAG) *runCtx {
	sh, ok := e.shapes.Load(spec)
	if !ok {
		sh, _ = e.shapes.LoadOrStore(spec, &shape{downstream: spec.Downstream(), limited: limited(spec)})
	}
	s := sh.(*shape)
	return &runCtx{run: r, runTime: ut, spec: spec, downstream: s.downstream, limited: s.limited}
}

// NewRun describes a run to create.
type NewRun struct {
	DagID    string
	Version  string
	Type     scheduler.RunType
	RunID    string // default: scheduler.RunID(Type, Interval.Start)
	Logical  time.Time
	Interval schedule.Interval
	Conf     map[string]any
	// BackfillID names the backfill creating the run, if any.
	BackfillID string
}

// ErrRunExists means a run with that id is already there: one run per (DAG, logical date).
var ErrRunExists = errors.New("engine: run already exists")

// CreateRun creates a run (once: its document id is derived from DAG and run id, and created
// with Create) and queues its first tasks, whose queueing creates their task instances. Server-side callers (the
// tick, a backfill's advance, a dag.trigger task) use it; clients use SubmitRun, which leaves
// the start to the advancer.
func (e *Engine) CreateRun(ctx context.Context, nr NewRun) (*scheduler.Run, error) {
	r, ut, err := e.createRun(ctx, nr)
	if err != nil {
		return nil, err
	}
	if err := e.startRun(ctx, &fsstore.Versioned[scheduler.Run]{Rec: *r, UpdateTime: ut}); err != nil {
		return nil, err
	}
	return r, nil
}

// SubmitRun creates a run, queued, and publishes its start for the advancer (StartRun): the
// caller does no more, so a client that dies at any point strands nothing. A start event
// that is lost is made up by the tick once the run's start grace passes.
func (e *Engine) SubmitRun(ctx context.Context, nr NewRun) (*scheduler.Run, error) {
	r, _, err := e.createRun(ctx, nr)
	if err != nil {
		return nil, err
	}
	e.noteRun(ctx, r.DagID, r.RunID)
	e.publishStart(ctx, r)
	return r, nil
}

// createRun creates a run's document, queued, with the tick's start grace as its deadline.
func (e *Engine) createRun(ctx context.Context, nr NewRun) (*scheduler.Run, time.Time, error) {
	r, err := e.runDoc(ctx, nr)
	if err != nil {
		return nil, time.Time{}, err
	}
	ut, err := e.store.CreateRunAt(ctx, r)
	if err != nil {
		if errors.Is(err, fsstore.ErrExists) {
			return nil, time.Time{}, e.runExists(ctx, r)
		}
		return nil, time.Time{}, err
	}
	e.Stats.RunsCreated.Add(1)
	return r, ut, nil
}

// runDoc builds the document of a new run: queued, with the tick's start grace as its
// deadline.
func (e *Engine) runDoc(ctx context.Context, nr NewRun) (*scheduler.Run, error) {
	now := e.now()
	if nr.RunID == "" {
		nr.RunID = scheduler.RunID(nr.Type, nr.Logical)
	}
	conf := ""
	if len(nr.Conf) > 0 {
		b, err := json.Marshal(nr.Conf)
		if err != nil {
			return nil, fmt.Errorf("engine: encode conf: %w", err)
		}
		conf = string(b)
	}
	r := scheduler.Run{
		DagID: nr.DagID, RunID: nr.RunID, RunType: nr.Type, Version: nr.Version, State: scheduler.RunQueued,
		LogicalDate: nr.Logical.UTC(), IntervalStart: nr.Interval.Start.UTC(), IntervalEnd: nr.Interval.End.UTC(),
		Conf: conf, BackfillID: nr.BackfillID, CreatedAt: now, TickDueAt: ptr(now.Add(e.cfg.StartGrace)),
		ExpireAt: e.expireAt(now),
	}
	if nr.Type == scheduler.RunScheduled {
		if spec, err := e.Spec(ctx, nr.DagID, nr.Version); err == nil {
			if sla := earliestSLA(spec); sla > 0 {
				r.SLADueAt = ptr(r.IntervalEnd.Add(sla))
			}
		}
	}
	return &r, nil
}

// startRun moves a queued run to running with a lease on its start (tick_due_at a start
// grace away), queues the tasks that wait for nothing and completes the noop tasks that
// follow, and then gives up the lease. It creates no task instance up front: each is created
// by its first transition (instances.go), a root's by its queueing. A starter that dies
// before it is done leaves the lease to pass, and the tick then sweeps the run (sweepRun); a
// queued run is started by the tick after its start grace. Every step is idempotent: a
// second starter finds the run moved (a conflict) and leaves it to the first.
func (e *Engine) startRun(ctx context.Context, v *fsstore.Versioned[scheduler.Run]) error {
	if v.Rec.State != scheduler.RunQueued {
		return nil
	}
	rc, err := e.runCtxOf(ctx, v.Rec, v.UpdateTime)
	if err != nil {
		return err
	}
	now := e.now()
	lease := now.Add(e.cfg.StartGrace)
	timeout := e.runDeadline(rc.spec, now)
	ut, err := e.store.ApplyRunChange(ctx, rc.run.DagID, rc.run.RunID, v.UpdateTime, scheduler.StartRun(now, lease, timeout))
	if isConflict(err) {
		return nil // another starter moved it: it holds the lease
	}
	if err != nil {
		return err
	}
	e.logRunStarted(ctx, &rc.run, now)
	rc.run.State, rc.run.StartedAt, rc.run.TimeoutAt = scheduler.RunRunning, &now, timeout
	known := map[string]scheduler.TaskState{}
	var done, roots []string
	for _, t := range rc.spec.Tasks {
		if len(t.Needs) == 0 || !scheduler.WaitsForUpstream(t.TriggerRule) {
			roots = append(roots, t.ID)
		}
	}
	roots, _, err = e.queueReady(ctx, rc, roots)
	if err != nil {
		return err
	}
	for _, id := range roots {
		st, finished, _, err := e.decideState(ctx, rc, id, scheduler.Ready)
		if err != nil {
			return err
		}
		if finished {
			known[id] = st
			done = append(done, id)
		}
	}
	if len(done) > 0 {
		err = e.cascadeKnown(ctx, rc, done, known)
	} else if len(rc.spec.Tasks) == 0 {
		err = e.maybeFinishRun(ctx, rc)
	}
	if err != nil {
		return err
	}
	if rc.run.State.Finished() {
		return nil // finished (and noted) by its cascade: no lease left to give up
	}
	e.releaseLease(ctx, rc.run.DagID, rc.run.RunID, ut, timeout)
	e.noteRun(ctx, rc.run.DagID, rc.run.RunID)
	return nil
}

// Advance is the fast-follow after a task instance finished: it decides each downstream task
// whose upstream is now complete enough (queue it, or skip it, or mark it upstream_failed),
// and finishes the run when nothing is left. Doing it twice finds nothing left to do.
func (e *Engine) Advance(ctx context.Context, dagID, runID, taskID string) error {
	rc, err := e.loadRun(ctx, dagID, runID)
	if err != nil {
		return err
	}
	return e.cascade(ctx, rc, []string{taskID})
}

// cascade decides the downstream of tasks that just finished, following skips, failures and
// noop completions transitively, then checks whether the run is over. It costs reads in
// proportion to the downstream, not to the run.
func (e *Engine) cascade(ctx context.Context, rc *runCtx, finished []string) error {
	return e.cascadeKnown(ctx, rc, finished, map[string]scheduler.TaskState{})
}

// cascadeKnown is cascade with the states of tasks already known to be finished (known,
// which it extends): a downstream task whose upstream states are all known is decided
// without a count, and chains of such tasks are completed in batches (runAhead).
func (e *Engine) cascadeKnown(ctx context.Context, rc *runCtx, finished []string, known map[string]scheduler.TaskState) error {
	pending := false
	work := append([]string(nil), finished...)
	for len(work) > 0 {
		t := work[0]
		work = work[1:]
		if parent, _, ok := scheduler.ParseMapChild(t); ok {
			settled, err := e.settleMapped(ctx, rc, parent)
			if err != nil {
				return err
			}
			if settled {
				work = append(work, parent)
			} else {
				pending = true
			}
			continue
		}
		if task, ok := rc.spec.Task(t); ok && task.DependsOnPast {
			if err := e.wakeNextRun(ctx, rc, t); err != nil {
				return err
			}
		}
		if _, ok := known[t]; ok {
			ahead, err := e.runAhead(ctx, rc, t, known)
			if err != nil {
				return err
			}
			work = append(work, ahead...)
		}
		// Tasks ready by their upstream states are queued together (queueReady); the rest,
		// and what it leaves, one by one.
		type decision struct {
			id    string
			force scheduler.Decision
		}
		var each []decision
		var ready []string
		for _, d := range rc.downstream[t] {
			if _, ok := known[d]; ok {
				continue // finished by this cascade
			}
			force := scheduler.Decision(-1)
			if dec, ok := decideInMemory(rc, d, known); ok {
				if dec == scheduler.Wait {
					pending = true
					continue
				}
				force = dec
			}
			if force == scheduler.Ready {
				ready = append(ready, d)
			} else {
				each = append(each, decision{d, force})
			}
		}
		if len(ready) > 0 {
			rest, waiting, err := e.queueReady(ctx, rc, ready)
			if err != nil {
				return err
			}
			pending = pending || waiting
			for _, d := range rest {
				each = append(each, decision{d, scheduler.Ready})
			}
		}
		for _, x := range each {
			st, done, waiting, err := e.decideState(ctx, rc, x.id, x.force)
			if err != nil {
				return err
			}
			pending = pending || waiting
			if done {
				known[x.id] = st
				work = append(work, x.id)
			}
		}
	}
	if err := e.fillSlots(ctx, rc); err != nil {
		return err
	}
	if pending {
		return nil
	}
	return e.maybeFinishRun(ctx, rc)
}

// decide evaluates one task instance that may be ready (decideState without the state).
func (e *Engine) decide(ctx context.Context, rc *runCtx, taskID string, force scheduler.Decision) (finished, pending bool, err error) {
	_, finished, pending, err = e.decideState(ctx, rc, taskID, force)
	return finished, pending, err
}

// decideState evaluates one task instance that may be ready. force, when not -1, skips the
// trigger rule (roots, or a decision made from known upstream states). It returns the state
// it wrote, whether the instance is now finished (so its own downstream must be decided) and
// whether it is still pending (waiting, queued or running).
func (e *Engine) decideState(ctx context.Context, rc *runCtx, taskID string, force scheduler.Decision) (state scheduler.TaskState, finished, pending bool, err error) {
	task, ok := rc.task(taskID)
	if !ok {
		return "", false, false, fmt.Errorf("engine: run %s has no task %s", rc.run.Key(), taskID)
	}
	for range maxConflictRetries {
		// Count first: most evaluations (a join waiting for the rest of a fan-out) end here,
		// at one aggregation query and no document read.
		dec := force
		if dec < 0 && scheduler.WaitsForUpstream(task.TriggerRule) {
			c, err := e.store.CountUpstream(ctx, rc.run.Key(), taskID)
			if err != nil {
				return "", false, false, err
			}
			c.Total = len(task.Needs) // instances not found yet count as not done
			if dec, err = scheduler.Evaluate(task.TriggerRule, c); err != nil {
				return "", false, false, err
			}
			if dec == scheduler.Wait {
				return "", false, true, nil
			}
			if dec == scheduler.Ready {
				if dec, err = e.branchAllows(ctx, rc, task); err != nil {
					return "", false, false, err
				}
			}
		}
		if dec == scheduler.Ready && task.DependsOnPast {
			ok, err := e.pastAllows(ctx, rc, taskID)
			if err != nil {
				return "", false, false, err
			}
			if !ok {
				return "", false, true, nil // re-evaluated when the previous run's instance finishes
			}
		}
		v, err := e.instance(ctx, rc, taskID)
		if err != nil {
			return "", false, false, err
		}
		if v.Rec.State != scheduler.TaskNone || dec < 0 {
			return "", false, !v.Rec.State.Finished(), nil
		}
		if dec == scheduler.Ready && task.Type != "noop" {
			full, err := e.runFull(ctx, rc)
			if err != nil {
				return "", false, false, err
			}
			if full {
				tr := scheduler.Transition{TaskID: taskID, From: v.Rec.State, To: scheduler.TaskScheduled,
					Set: scheduler.TaskSet{TickDueAt: scheduler.To(ptr(e.now().Add(e.cfg.RepublishAfter)))}}
				_, err = e.applyTo(ctx, v, tr)
				if isConflict(err) {
					continue
				}
				return scheduler.TaskScheduled, false, true, err
			}
			err = e.queue(ctx, rc, task, v, true)
			if isConflict(err) {
				continue
			}
			return scheduler.TaskQueued, false, true, err
		}
		tr, _ := scheduler.Settle(v.Rec, dec, false, e.now())
		state = tr.To
		_, err = e.applyTo(ctx, v, tr)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return "", false, false, err
		}
		return state, true, false, nil
	}
	return "", false, false, fmt.Errorf("engine: decide %s/%s: too many concurrent changes", rc.run.Key(), taskID)
}

// queue moves a task instance to queued with a new attempt id and publishes the attempt. A
// failed publish is left to the tick, which republishes queued attempts nobody claimed.
// newTry is false for a sensor's next poke, which keeps its try number (pokes use up no
// tries) and the try's sensor start.
func (e *Engine) queue(ctx context.Context, rc *runCtx, task *dag.Task, v *fsstore.Versioned[scheduler.TaskInstance], newTry bool) error {
	tr := scheduler.Queue(v.Rec, scheduler.NewAttemptID(), newTry, e.now(), e.cfg.RepublishAfter)
	if _, err := e.applyTo(ctx, v, tr); err != nil {
		return err
	}
	e.Stats.TasksQueued.Add(1)
	e.publishTask(ctx, task, scheduler.AttemptRef{
		DagID: rc.run.DagID, RunID: rc.run.RunID, TaskID: task.ID, TryNumber: tr.Set.TryNumber.V, AttemptID: tr.Set.AttemptID.V,
	})
	return nil
}

// queueReady queues tasks of a running run that are ready (their trigger rule decided from
// known upstream states, or they wait for nothing) in batches: one batched read of their
// instances, atomic commits of up to fsstore.MaxBatch queue transitions each preconditioned
// on its instance's update time, and the attempts published at once. It is decideState's
// queueing path for many tasks at a time: a fan-out's middle or a run's roots cost a few
// round trips instead of three each (docs/firestore-ops.md).
//
// It returns the tasks it leaves to the one-by-one path (decideState with Ready): those it
// does not batch (a noop, a depends_on_past task, a run whose max_active_tasks can bind, an
// id that is not a task of the DAG), and those of a commit that lost a race, which
// decideState reads and decides again. An instance someone else already moved is left alone, as decideState
// leaves it; pending reports whether one of them is unfinished.
func (e *Engine) queueReady(ctx context.Context, rc *runCtx, ids []string) (rest []string, pending bool, err error) {
	var batch []string
	for _, id := range ids {
		t, ok := rc.spec.Task(id)
		if ok && !rc.limited && t.Type != "noop" && !t.DependsOnPast {
			batch = append(batch, id)
		} else {
			rest = append(rest, id)
		}
	}
	if len(batch) < 2 {
		return ids, false, nil // one task: the one-by-one path costs the same
	}
	docs, err := e.instances(ctx, rc, batch) // a root or a task first readied: `none`, no document yet
	if err != nil {
		return nil, false, err
	}
	now := e.now()
	var ups []fsstore.TaskInstanceUpdate
	var trs []scheduler.Transition
	for _, id := range batch {
		v := docs[id]
		switch {
		case v == nil:
			rest = append(rest, id) // decideState says it is missing
			continue
		case v.Rec.State != scheduler.TaskNone:
			pending = pending || !v.Rec.State.Finished() // decided by someone else
			continue
		}
		tr := scheduler.Queue(v.Rec, scheduler.NewAttemptID(), true, now, e.cfg.RepublishAfter)
		ups = append(ups, fsstore.TaskInstanceUpdate{TI: &v.Rec, UpdateTime: v.UpdateTime, Fields: fsstore.TransitionFields(tr)})
		trs = append(trs, tr)
	}
	var queued []scheduler.Transition
	for i := 0; i < len(ups); i += fsstore.MaxBatch {
		j := min(i+fsstore.MaxBatch, len(ups))
		werr := e.store.UpdateTaskInstancesIf(ctx, ups[i:j])
		if isConflict(werr) {
			for _, tr := range trs[i:j] {
				rest = append(rest, tr.TaskID)
			}
			continue
		}
		if werr != nil {
			err = werr // those written so far are still published below
			break
		}
		e.applied(rc.run.DagID, rc.run.RunID, trs[i:j]...)
		queued = append(queued, trs[i:j]...)
	}
	e.Stats.TasksQueued.Add(int64(len(queued)))
	e.publishQueued(ctx, rc.run.DagID, rc.run.RunID, rc.spec, queued)
	return rest, pending || len(queued) > 0, err
}

// publishAtOnce bounds the publishes publishQueued has in flight.
const publishAtOnce = 64

// publishQueued publishes the attempts of queue transitions just written, concurrently, and
// returns once every publish has: each that fails is logged and left to the tick, which
// republishes queued attempts nobody claimed, as for publishTask.
func (e *Engine) publishQueued(ctx context.Context, dagID, runID string, spec *dag.DAG, trs []scheduler.Transition) {
	if len(trs) == 1 {
		t, _ := spec.Task(trs[0].TaskID)
		e.publishTask(ctx, t, scheduler.AttemptRef{DagID: dagID, RunID: runID, TaskID: t.ID,
			TryNumber: trs[0].Set.TryNumber.V, AttemptID: trs[0].Set.AttemptID.V})
		return
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, publishAtOnce)
	for _, tr := range trs {
		t, _ := spec.Task(tr.TaskID)
		ref := scheduler.AttemptRef{DagID: dagID, RunID: runID, TaskID: t.ID, TryNumber: tr.Set.TryNumber.V, AttemptID: tr.Set.AttemptID.V}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			e.publishTask(ctx, t, ref)
		}()
	}
	wg.Wait()
}

func (e *Engine) publishTask(ctx context.Context, task *dag.Task, ref scheduler.AttemptRef) {
	msg, _ := json.Marshal(scheduler.TaskMessage{
		AttemptRef: ref, Type: task.Type, Executor: task.Executor, Resources: task.Resources,
		// Rounded up: a sub-second timeout is not "none", and 9m0.5s is over the runner's 9m.
		TimeoutSeconds: int((task.Timeout + time.Second - 1) / time.Second), Expand: task.ForEach != nil,
	})
	if err := e.pub.PublishTask(ctx, msg); err != nil {
		e.Stats.PublishFailures.Add(1)
		e.log.Warn("publish failed; the tick will republish", "attempt_id", ref.AttemptID, "error", err)
	}
}

// maybeFinishRun settles the run's state from its instances: finished when every instance
// has (failed if any ended failed or upstream_failed, success otherwise), running again when
// a clear made some unfinished. A run that is already in the right state is not written.
// A task with no instance document is `none`, so unfinished: the run is finished only when
// the stored instances are as many as its DAG's tasks and their expansions' instances
// (expectedInstances), and all finished.
func (e *Engine) maybeFinishRun(ctx context.Context, rc *runCtx) error {
	total, done, bad, err := e.store.RunProgress(ctx, rc.run.Key())
	if err != nil {
		return err
	}
	tasks := len(rc.spec.Tasks)
	if total >= tasks && done == total {
		if tasks, err = e.expectedInstances(ctx, rc); err != nil {
			return err
		}
	}
	want := scheduler.RunOutcome(tasks, total, done, bad)
	if want == scheduler.RunRunning && !rc.run.State.Finished() {
		// Only a run its caller saw finished (a clear, a mark) can need reopening; for the
		// rest, "not done yet" costs no read of the run.
		return nil
	}
	for range maxConflictRetries {
		v, err := e.store.GetRun(ctx, rc.run.DagID, rc.run.RunID)
		if err != nil {
			return err
		}
		if v.Rec.State == want || (want == scheduler.RunRunning && v.Rec.State == scheduler.RunQueued) {
			return nil
		}
		now := e.now()
		_, err = e.store.ApplyRunChange(ctx, v.Rec.DagID, v.Rec.RunID, v.UpdateTime, scheduler.SettleRun(want, now, e.runDeadline(rc.spec, now)))
		if isConflict(err) {
			continue
		}
		if err == nil {
			rc.run.State = want
			e.noteRun(ctx, rc.run.DagID, rc.run.RunID)
		}
		return err
	}
	return fmt.Errorf("engine: settle run %s: too many concurrent changes", rc.run.Key())
}

// expectedInstances is how many instance documents a run has once every task left `none`:
// one per task of its DAG, plus the instances each expanded for_each task made (its
// map_count). A for_each task not yet expanded, or not yet stored, counts for itself alone:
// it is unfinished, so the run is anyway.
func (e *Engine) expectedInstances(ctx context.Context, rc *runCtx) (int, error) {
	n := len(rc.spec.Tasks)
	var mapped []string
	for _, t := range rc.spec.Tasks {
		if t.ForEach != nil {
			mapped = append(mapped, t.ID)
		}
	}
	if len(mapped) == 0 {
		return n, nil
	}
	got, err := e.store.GetTaskInstances(ctx, rc.run.DagID, rc.run.RunID, mapped)
	if err != nil {
		return 0, err
	}
	for _, v := range got {
		if v.Rec.MapCount != nil {
			n += *v.Rec.MapCount
		}
	}
	return n, nil
}

// runDeadline is when a running run's dagrun_timeout passes (nil: none).
func (e *Engine) runDeadline(d *dag.DAG, from time.Time) *time.Time {
	if d.DagrunTimeout <= 0 {
		return nil
	}
	return ptr(from.Add(d.DagrunTimeout))
}

// pastAllows reports whether a depends_on_past task may run: its instance in the DAG's
// previous run (by logical date) ended success or skipped, or the task was not in that run's
// DAG version. A task of that version with no instance document is `none` there: not done.
func (e *Engine) pastAllows(ctx context.Context, rc *runCtx, taskID string) (bool, error) {
	prev, err := e.store.AdjacentRun(ctx, rc.run.DagID, rc.run.LogicalDate, true)
	if err != nil || prev == nil {
		return err == nil, err
	}
	ti, err := e.store.GetTaskInstance(ctx, prev.Rec.DagID, prev.Rec.RunID, taskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		spec, serr := e.Spec(ctx, prev.Rec.DagID, prev.Rec.Version)
		if serr != nil {
			return false, serr
		}
		_, had := spec.Task(taskID)
		return !had, nil // not in that version: nothing to wait for; else `none` there
	}
	if err != nil {
		return false, err
	}
	return ti.Rec.State == scheduler.TaskSuccess || ti.Rec.State == scheduler.TaskSkipped, nil
}

// wakeNextRun re-evaluates a depends_on_past task in the DAG's next run once its instance
// in this run has finished, so the waiting one goes at once instead of at a later tick.
func (e *Engine) wakeNextRun(ctx context.Context, rc *runCtx, taskID string) error {
	next, err := e.store.AdjacentRun(ctx, rc.run.DagID, rc.run.LogicalDate, false)
	if err != nil || next == nil || next.Rec.State.Finished() {
		return err
	}
	nrc, err := e.runCtxOf(ctx, next.Rec, next.UpdateTime)
	if err != nil {
		return err
	}
	if _, ok := nrc.spec.Task(taskID); !ok {
		return nil
	}
	finished, _, err := e.decide(ctx, nrc, taskID, -1)
	if err != nil || !finished {
		return err
	}
	return e.cascade(ctx, nrc, []string{taskID})
}

// earliestSLA is the shortest SLA of a DAG and its tasks (0: none).
func earliestSLA(d *dag.DAG) time.Duration {
	best := d.SLA
	for _, t := range d.Tasks {
		if t.SLA > 0 && (best == 0 || t.SLA < best) {
			best = t.SLA
		}
	}
	return best
}

// logRunStarted logs LogEventDagrunStarted; a scheduled run carries its schedule delay (its
// start minus the end of its data interval, when the schedule made it due), Airflow's
// dagrun.schedule_delay.
func (e *Engine) logRunStarted(ctx context.Context, r *scheduler.Run, now time.Time) {
	attrs := []slog.Attr{
		slog.String(LogKeyDagID, r.DagID), slog.String(LogKeyRunID, r.RunID), slog.String(LogKeyRunType, string(r.RunType)),
	}
	if r.RunType == scheduler.RunScheduled && !r.IntervalEnd.IsZero() {
		attrs = append(attrs, slog.Int64(LogKeyScheduleDelayMS, max(now.Sub(r.IntervalEnd), 0).Milliseconds()))
	}
	e.logEvent(ctx, slog.LevelInfo, LogEventDagrunStarted, "run started", attrs...)
}
