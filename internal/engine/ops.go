package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// The operations the CLI (and later the API and UI) call. Each changes documents only by
// conditional writes, like the rest of the engine, so it is safe while runs are in flight.

// loadRunOp loads a run for an operation, with a user-facing error when it does not exist.
func (e *Engine) loadRunOp(ctx context.Context, dagID, runID string) (*runCtx, error) {
	rc, err := e.loadRun(ctx, dagID, runID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("no run %s of DAG %s (see `updraft runs list %s`)", runID, dagID, dagID)
	}
	return rc, err
}

// ClearTasks re-runs tasks of a run, optionally with everything downstream and/or upstream of
// them: their instances go back to `none` (tries are counted on, and the retry budget starts
// again), a finished run goes back to running, and those whose upstream is complete are
// queued at once. A cleared task that is still queued or running has its attempt fenced out:
// that attempt's result will not be recorded on the task, and a running one's execution is
// cancelled (as a dagrun_timeout does). It returns the cleared task ids.
func (e *Engine) ClearTasks(ctx context.Context, dagID, runID string, taskIDs []string, downstream, upstream bool) ([]string, error) {
	rc, err := e.loadRunOp(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	set, instances, err := clearScope(rc, taskIDs, downstream, upstream)
	if err != nil {
		return nil, err
	}
	var cleared []string
	for _, id := range instances { // for_each instances cleared one by one: their task re-opens
		parent, _, _ := scheduler.ParseMapChild(id)
		t, _ := rc.task(id)
		ok, err := e.resetTask(ctx, rc, t)
		if err != nil {
			return cleared, err
		}
		if ok {
			cleared = append(cleared, id)
		}
		if err := e.reopenMapped(ctx, rc, parent); err != nil {
			return cleared, err
		}
	}
	for _, t := range rc.spec.Tasks { // file order is a valid order to reset in
		if !set[t.ID] {
			continue
		}
		ok, err := e.resetTask(ctx, rc, &t)
		if err != nil {
			return cleared, err
		}
		if ok {
			cleared = append(cleared, t.ID)
		}
	}
	if err := e.maybeFinishRun(ctx, rc); err != nil { // back to running
		return cleared, err
	}
	// The cascade below may be long (a noop chain): a caller that dies during it leaves a
	// lease, and the tick finishes the run's advance.
	release := e.holdRun(ctx, dagID, runID)
	defer release()
	var done []string
	for _, id := range instances {
		finished, _, err := e.decide(ctx, rc, id, scheduler.Ready)
		if err != nil {
			return cleared, err
		}
		if finished {
			done = append(done, id)
		}
	}
	for _, t := range topoOrder(rc.spec) {
		if !set[t] {
			continue
		}
		finished, _, err := e.decide(ctx, rc, t, -1)
		if err != nil {
			return cleared, err
		}
		if finished {
			done = append(done, t)
		}
	}
	if len(done) > 0 {
		return cleared, e.cascade(ctx, rc, done)
	}
	return cleared, nil
}

// resetTask moves one instance back to none. It reports false when it already was (a task
// with no instance document is `none`: clearing it writes nothing).
func (e *Engine) resetTask(ctx context.Context, rc *runCtx, t *dag.Task) (bool, error) {
	for range maxConflictRetries {
		v, err := e.instance(ctx, rc, t.ID)
		if err != nil {
			return false, err
		}
		if v.Rec.State == scheduler.TaskNone {
			return false, nil
		}
		if t.ForEach != nil && v.Rec.MapCount != nil {
			if err := e.dropInstances(ctx, rc, t.ID); err != nil {
				return false, err
			}
		}
		tr := scheduler.Clear(v.Rec, t.Retries)
		if v.Rec.Job != "" {
			tr.Set.Job = scheduler.To(e.cancelJobOf(ctx, &v.Rec, "cleared")) // deferred.go
		}
		_, err = e.applyTo(ctx, v, tr)
		if isConflict(err) {
			continue
		}
		if err == nil && v.Rec.State == scheduler.TaskRunning {
			// Fenced out, the attempt's worker would learn so only at its next renewal, its
			// command running beside the new try until then: stop its execution now.
			e.cancelAttempt(ctx, &v.Rec)
		}
		return err == nil, err
	}
	return false, fmt.Errorf("engine: clear %s: too many concurrent changes", t.ID)
}

// reopenMapped moves a finished for_each task back to running (holding no slot) when one of
// its instances is cleared: it settles again once that instance finishes.
func (e *Engine) reopenMapped(ctx context.Context, rc *runCtx, taskID string) error {
	for range maxConflictRetries {
		v, err := e.instance(ctx, rc, taskID)
		if err != nil {
			return err
		}
		if !v.Rec.State.Finished() || v.Rec.MapCount == nil {
			return nil
		}
		_, err = e.apply(ctx, rc.run.DagID, rc.run.RunID, v.UpdateTime, scheduler.Transition{TaskID: taskID, From: v.Rec.State, To: scheduler.TaskRunning,
			Set: scheduler.TaskSet{HoldsSlot: scheduler.To(false), EndedAt: scheduler.To[*time.Time](nil), Error: scheduler.To("")}})
		if !isConflict(err) {
			return err
		}
	}
	return fmt.Errorf("engine: reopen %s: too many concurrent changes", taskID)
}

// ClearRun re-runs every task of a run.
func (e *Engine) ClearRun(ctx context.Context, dagID, runID string) ([]string, error) {
	rc, err := e.loadRunOp(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	return e.ClearTasks(ctx, dagID, runID, taskIDsOf(rc.spec), false, false)
}

// ErrTaskActive refuses an operation on a task that is queued or running.
var ErrTaskActive = errors.New("task is queued or running")

// MarkTask sets a task's state to success or failed by hand. A queued or running task is
// refused (its worker's result would race the mark): wait for it, or clear it. Its downstream
// is then decided as if the task had ended that way, and the run's state follows.
func (e *Engine) MarkTask(ctx context.Context, dagID, runID, taskID string, state scheduler.TaskState) error {
	if state != scheduler.TaskSuccess && state != scheduler.TaskFailed {
		return fmt.Errorf("a task can be marked success or failed, not %q", state)
	}
	rc, err := e.loadRunOp(ctx, dagID, runID)
	if err != nil {
		return err
	}
	if _, ok := rc.task(taskID); !ok {
		return fmt.Errorf("run %s/%s has no task %q (its tasks: %s)", dagID, runID, taskID, strings.Join(taskIDsOf(rc.spec), ", "))
	}
	for range maxConflictRetries {
		v, err := e.instance(ctx, rc, taskID) // a task with no document is `none`: the mark creates it
		if err != nil {
			return err
		}
		switch v.Rec.State {
		case scheduler.TaskQueued, scheduler.TaskRunning:
			return fmt.Errorf("%w: %s is %s (attempt %s): marking it is refused so its result can't race the mark; wait for it to finish, or clear it",
				ErrTaskActive, taskID, v.Rec.State, v.Rec.AttemptID)
		case state:
			return nil
		}
		tr := scheduler.Mark(v.Rec, state, e.now())
		if v.Rec.Job != "" {
			tr.Set.Job = scheduler.To(e.cancelJobOf(ctx, &v.Rec, "marked "+string(state))) // deferred.go
		}
		_, err = e.applyTo(ctx, v, tr)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return err
		}
		if parent, _, ok := scheduler.ParseMapChild(taskID); ok {
			if err := e.reopenMapped(ctx, rc, parent); err != nil { // it settles again below
				return err
			}
		}
		release := e.holdRun(ctx, dagID, runID) // as in ClearTasks
		err = e.cascade(ctx, rc, []string{taskID})
		release()
		if err != nil {
			return err
		}
		if err := e.maybeFinishRun(ctx, rc); err != nil {
			return err
		}
		// A finished run may keep its state and still change a cell.
		e.noteRun(ctx, dagID, runID)
		return nil
	}
	return fmt.Errorf("engine: mark %s: too many concurrent changes", taskID)
}

// timeoutRun ends a run whose dagrun_timeout passed: queued and running tasks fail (their
// executions are cancelled), tasks not started are skipped (those with no instance document
// are created skipped), and the run fails.
func (e *Engine) timeoutRun(ctx context.Context, rc *runCtx, now time.Time) error {
	tis, err := e.listInstances(ctx, rc)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("dagrun_timeout of %s passed", rc.spec.DagrunTimeout)
	for i := range tis {
		if err := e.timeoutTask(ctx, rc, &tis[i], msg, now); err != nil {
			return err
		}
	}
	for range maxConflictRetries {
		v, err := e.store.GetRun(ctx, rc.run.DagID, rc.run.RunID)
		if err != nil {
			return err
		}
		if v.Rec.State.Finished() {
			return nil
		}
		_, err = e.store.ApplyRunChange(ctx, v.Rec.DagID, v.Rec.RunID, v.UpdateTime, scheduler.SettleRun(scheduler.RunFailed, now, nil))
		if err == nil {
			e.noteRun(ctx, rc.run.DagID, rc.run.RunID)
		}
		if !isConflict(err) {
			return err
		}
	}
	return fmt.Errorf("engine: time out run %s: too many concurrent changes", rc.run.Key())
}

// timeoutTask ends one unfinished task of a run whose dagrun_timeout passed. A conflict (a
// worker or a poke wrote the instance meanwhile) reads it again and decides again, so no task
// is left unfinished in a failed run.
func (e *Engine) timeoutTask(ctx context.Context, rc *runCtx, v *fsstore.Versioned[scheduler.TaskInstance], msg string, now time.Time) error {
	for range maxConflictRetries {
		if v.Rec.State.Finished() {
			return nil
		}
		state := scheduler.TaskSkipped
		if v.Rec.State == scheduler.TaskQueued || v.Rec.State == scheduler.TaskRunning || waitingOnJob(&v.Rec) {
			state = scheduler.TaskFailed
		}
		tr := scheduler.Transition{TaskID: v.Rec.TaskID, From: v.Rec.State, To: state,
			Set: scheduler.TaskSet{EndedAt: scheduler.To(&now), Error: scheduler.To(msg), TickDueAt: scheduler.To[*time.Time](nil)}}
		if v.Rec.Job != "" {
			tr.Set.Job = scheduler.To(e.cancelJobOf(ctx, &v.Rec, "dagrun_timeout")) // deferred.go
		}
		_, err := e.applyTo(ctx, v, tr)
		if isConflict(err) {
			if v, err = e.instance(ctx, rc, v.Rec.TaskID); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if state == scheduler.TaskFailed {
			ref := scheduler.AttemptRef{DagID: v.Rec.DagID, RunID: v.Rec.RunID, TaskID: v.Rec.TaskID,
				TryNumber: v.Rec.TryNumber, AttemptID: v.Rec.AttemptID}
			ran := time.Duration(-1)
			if v.Rec.State == scheduler.TaskRunning && v.Rec.StartedAt != nil {
				ran = span(*v.Rec.StartedAt, now)
			}
			e.logTaskFinished(ctx, ref, state, "", ran, msg)
			e.publishEvent(ctx, ref, state, rc.run.Version)
		}
		if v.Rec.State == scheduler.TaskRunning && v.Rec.AttemptID != "" {
			e.cancelAttempt(ctx, &v.Rec)
		}
		return nil
	}
	return fmt.Errorf("engine: time out task %s of run %s: too many concurrent changes", v.Rec.TaskID, rc.run.Key())
}

// cancelAttempt asks the executor to stop an attempt's execution (best effort: a worker
// that ignores it is found by its lease).
func (e *Engine) cancelAttempt(ctx context.Context, ti *scheduler.TaskInstance) {
	a := ti.Attempt
	if a == nil || a.ID != ti.AttemptID || e.executor == nil || a.ExecutorRef == "" {
		return
	}
	if err := e.executor.Cancel(ctx, a.ExecutorRef); err != nil {
		e.log.Warn("could not cancel an execution", "attempt_id", a.ID, "executor_ref", a.ExecutorRef, "error", err)
	}
}

// closure returns the tasks plus, as asked, everything downstream and upstream of them.
func closure(d *dag.DAG, start []string, downstream, upstream bool) map[string]bool {
	down := d.Downstream()
	set := map[string]bool{}
	var walk func(id string, next func(string) []string)
	walk = func(id string, next func(string) []string) {
		for _, n := range next(id) {
			if !set[n] {
				set[n] = true
				walk(n, next)
			}
		}
	}
	for _, id := range start {
		set[id] = true
	}
	for _, id := range start {
		if downstream {
			walk(id, func(x string) []string { return down[x] })
		}
		if upstream {
			walk(id, func(x string) []string { t, _ := d.Task(x); return t.Needs })
		}
	}
	return set
}

// topoOrder lists task ids so every task comes after what it needs.
func topoOrder(d *dag.DAG) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(id string)
	visit = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		t, _ := d.Task(id)
		for _, n := range t.Needs {
			visit(n)
		}
		out = append(out, id)
	}
	for _, t := range d.Tasks {
		visit(t.ID)
	}
	return out
}

func taskIDsOf(d *dag.DAG) []string {
	out := make([]string, 0, len(d.Tasks))
	for _, t := range d.Tasks {
		out = append(out, t.ID)
	}
	return slices.Clip(out)
}

// clearScope works out what clearing ids in a run means, for ClearTasks and PreviewClear alike:
// the tasks cleared whole (ids that are tasks, with their downstream and/or upstream as asked),
// and the for_each instances cleared one by one (instance ids whose task is not cleared whole;
// with downstream, an instance brings its task's downstream along).
func clearScope(rc *runCtx, ids []string, downstream, upstream bool) (whole map[string]bool, instances []string, err error) {
	var tasks, named []string
	for _, id := range ids {
		if _, ok := rc.spec.Task(id); ok {
			tasks = append(tasks, id)
			continue
		}
		if _, ok := rc.task(id); ok {
			named = append(named, id)
			continue
		}
		return nil, nil, fmt.Errorf("%w: run %s/%s has no task %q (its tasks: %s)", ErrUnknownTask, rc.run.DagID, rc.run.RunID, id, strings.Join(taskIDsOf(rc.spec), ", "))
	}
	whole = closure(rc.spec, tasks, downstream, upstream)
	for _, id := range named {
		parent, _, _ := scheduler.ParseMapChild(id)
		if downstream {
			for t := range closure(rc.spec, []string{parent}, true, false) {
				if t != parent {
					whole[t] = true
				}
			}
		}
		if !whole[parent] { // else the whole task is cleared, and expands again
			instances = append(instances, id)
		}
	}
	return whole, instances, nil
}
