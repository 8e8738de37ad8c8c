package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Control flow: branches choose which of their downstream tasks run, and for_each tasks fan
// out at run time into instances id[0], id[1], … that run as tasks of their own.

// task finds a task of the run's DAG, or an instance of a for_each task ("load[3]"): a copy
// of its task with the instance's id, no upstream (its task was ready) and no for_each.
func (rc *runCtx) task(id string) (*dag.Task, bool) {
	if t, ok := rc.spec.Task(id); ok {
		return t, true
	}
	parent, _, ok := scheduler.ParseMapChild(id)
	if !ok {
		return nil, false
	}
	t, ok := rc.spec.Task(parent)
	if !ok || t.ForEach == nil {
		return nil, false
	}
	c := *t
	c.ID, c.Needs, c.ForEach, c.DependsOnPast = id, nil, nil, false
	return &c, true
}

// branchAllows turns a Ready decision into Skip for a task that a finished upstream branch
// did not choose (Airflow's skip_all_except: the branch's direct downstream tasks that are
// neither chosen nor downstream of a chosen one). It costs one read per upstream branch, and
// nothing for tasks without one. Checking here, rather than only when the branch finishes,
// keeps a task from running when another upstream's fast-follow decides it first.
func (e *Engine) branchAllows(ctx context.Context, rc *runCtx, task *dag.Task) (scheduler.Decision, error) {
	for _, up := range task.Needs {
		ut, ok := rc.spec.Task(up)
		if !ok || ut.Type != "branch" {
			continue
		}
		v, err := e.instance(ctx, rc, up)
		if err != nil {
			return scheduler.Wait, err
		}
		if v.Rec.State == scheduler.TaskSuccess && rc.spec.BranchSkips(up, v.Rec.Follow)[task.ID] {
			return scheduler.Skip, nil
		}
	}
	return scheduler.Ready, nil
}

// errExpandConflict asks applyOutcome to re-read the task instance and decide again.
var errExpandConflict = errors.New("engine: expansion raced another change")

// expand creates a for_each task's instances from the list its expansion attempt recorded
// and queues them; the task stays running (holding no slot) until they all finish. An empty
// list skips the task. Every step is idempotent, so the tick's follow-up can redo it.
func (e *Engine) expand(ctx context.Context, rc *runCtx, task *dag.Task, v *fsstore.Versioned[scheduler.TaskInstance], items []json.RawMessage) (scheduler.TaskState, error) {
	n := len(items)
	if v.Rec.MapCount == nil {
		tr := scheduler.Transition{TaskID: task.ID, From: v.Rec.State, To: v.Rec.State,
			Set: scheduler.TaskSet{MapCount: scheduler.To(ptr(n)), HoldsSlot: scheduler.To(false)}}
		if n == 0 {
			now := e.now()
			tr.To, tr.Set = scheduler.TaskSkipped, scheduler.TaskSet{MapCount: scheduler.To(ptr(0)), EndedAt: scheduler.To(&now),
				Error: scheduler.To("for_each: the list is empty, so there is nothing to run")}
		}
		if _, err := e.apply(ctx, rc.run.DagID, rc.run.RunID, v.UpdateTime, tr); err != nil {
			if isConflict(err) {
				return "", errExpandConflict
			}
			return "", err
		}
	}
	if n == 0 {
		return scheduler.TaskSkipped, e.cascade(ctx, rc, []string{task.ID})
	}
	tis := make([]*scheduler.TaskInstance, n)
	expire := e.expireAt(e.now())
	for i := range items {
		tis[i] = &scheduler.TaskInstance{
			DagID: rc.run.DagID, RunID: rc.run.RunID, RunKey: rc.run.Key(), TaskID: scheduler.MapChildID(task.ID, i),
			Type: task.Type, State: scheduler.TaskNone, MaxTries: task.Retries + 1,
			Downstream: []string{scheduler.MapMarker(task.ID)}, MapIndex: ptr(i), MapItem: string(items[i]), ExpireAt: expire,
		}
	}
	if err := e.store.CreateTaskInstances(ctx, tis); err != nil {
		return "", err
	}
	var (
		g    errgroup.Group
		done = make([]bool, n)
	)
	g.SetLimit(16)
	for i := range tis {
		g.Go(func() error {
			finished, _, err := e.decide(ctx, rc, tis[i].TaskID, scheduler.Ready)
			done[i] = finished
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	var finished []string
	for i, d := range done {
		if d {
			finished = append(finished, tis[i].TaskID)
		}
	}
	if len(finished) > 0 { // noop instances complete at once
		if err := e.cascade(ctx, rc, finished); err != nil {
			return "", err
		}
	}
	return scheduler.TaskRunning, nil
}

// settleMapped gives an expanded for_each task the combined state of its instances once all
// have finished (scheduler.MappedState). It reports whether the task is finished, so its
// own downstream must be decided.
func (e *Engine) settleMapped(ctx context.Context, rc *runCtx, taskID string) (bool, error) {
	c, err := e.store.CountUpstream(ctx, rc.run.Key(), scheduler.MapMarker(taskID))
	if err != nil {
		return false, err
	}
	for range maxConflictRetries {
		v, err := e.instance(ctx, rc, taskID)
		if err != nil {
			return false, err
		}
		if v.Rec.State != scheduler.TaskRunning || v.Rec.MapCount == nil {
			return v.Rec.State.Finished(), nil
		}
		if c.Done < *v.Rec.MapCount {
			return false, nil
		}
		c.Total = *v.Rec.MapCount
		state := scheduler.MappedState(c)
		now := e.now()
		tr := scheduler.Transition{TaskID: taskID, From: v.Rec.State, To: state, Set: scheduler.TaskSet{EndedAt: scheduler.To(&now), Error: scheduler.To("")}}
		if bad := c.Failed + c.UpstreamFailed; bad > 0 {
			tr.Set.Error = scheduler.To(fmt.Sprintf("%d of %d instances failed", bad, c.Total))
		}
		_, err = e.apply(ctx, rc.run.DagID, rc.run.RunID, v.UpdateTime, tr)
		if isConflict(err) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("engine: settle %s/%s: too many concurrent changes", rc.run.Key(), taskID)
}

// mappedXCom is the XCom of an expanded for_each task: the list of its instances' values in
// index order (null for an instance without one), as Airflow's xcom_pull of a mapped task.
func (e *Engine) mappedXCom(ctx context.Context, ti scheduler.TaskInstance) (json.RawMessage, error) {
	kids, err := e.store.MapInstances(ctx, ti.RunKey, ti.TaskID)
	if err != nil {
		return nil, err
	}
	sort.Slice(kids, func(i, j int) bool { return idx(kids[i].Rec) < idx(kids[j].Rec) })
	out := make([]json.RawMessage, len(kids))
	for i, k := range kids {
		out[i] = json.RawMessage("null")
		if k.Rec.State != scheduler.TaskSuccess || k.Rec.AttemptID == "" {
			continue
		}
		out[i] = xcomOf(&k.Rec)
	}
	return json.Marshal(out)
}

func idx(ti scheduler.TaskInstance) int {
	if ti.MapIndex == nil {
		return -1
	}
	return *ti.MapIndex
}

// dropInstances deletes a for_each task's instances (when the task is cleared: it expands
// again on its next run, perhaps into a different number). Their attempts stay as history.
func (e *Engine) dropInstances(ctx context.Context, rc *runCtx, taskID string) error {
	kids, err := e.store.MapInstances(ctx, rc.run.Key(), taskID)
	if err != nil {
		return err
	}
	for i := range kids {
		if err := e.store.DeleteTaskInstance(ctx, &kids[i].Rec, kids[i].UpdateTime); err != nil && !errors.Is(err, fsstore.ErrNotFound) {
			return err
		}
	}
	return nil
}
