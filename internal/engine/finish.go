package engine

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// finishAtOnce is Finish in one atomic commit when the whole follow-up of a result is known
// from what the worker holds: the attempt's result with its task instance's transition (one
// write of the instance, which holds the attempt) and the queueing of every downstream task,
// each write preconditioned on its document's update time. It applies to the common case, a task that succeeded and whose downstream tasks it
// alone was waiting for (a chain, a fan-out's root) in a DAG without alerts and without a
// max_active_tasks that can bind. Nothing is then left for the tick, so the result is written
// without a follow-up deadline and no second write clears it (docs/firestore-ops.md).
//
// done is false when the case does not apply or the commit lost a race; the caller then
// takes the step-by-step path, which re-reads and decides again.
func (c *Claim) finishAtOnce(ctx context.Context, res Result) (done bool, err error) {
	e, ref := c.e, c.Ref
	rc := e.newRunCtx(c.Run, time.Time{}, c.DAG)
	if res.State != scheduler.AttemptSuccess || !plainTask(c.Task) || rc.limited || anyAlerts(c.DAG) || c.ti.Job != "" {
		return false, nil
	}
	if _, _, mapped := scheduler.ParseMapChild(ref.TaskID); mapped {
		return false, nil
	}
	down := rc.downstream[ref.TaskID]
	if len(down) == 0 || len(down)+1 > fsstore.MaxBatch {
		return false, nil // a leaf may finish the run: the step-by-step path counts
	}
	known := map[string]scheduler.TaskState{ref.TaskID: scheduler.TaskSuccess}
	for _, d := range down {
		t, ok := rc.spec.Task(d)
		if !ok || t.Type == "noop" || t.DependsOnPast || !scheduler.WaitsForUpstream(t.TriggerRule) {
			return false, nil
		}
		if dec, ok := decideInMemory(rc, d, known); !ok || dec != scheduler.Ready {
			return false, nil
		}
	}
	now := e.now()
	self, _, err := scheduler.Finish(c.ti, ref.AttemptID, ref.TryNumber, scheduler.Outcome{State: res.State, Error: res.Error},
		scheduler.RetryPolicy{}, scheduler.SensorPolicy{}, now)
	if err != nil || self.To != scheduler.TaskSuccess {
		return false, nil
	}
	fctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	docs, err := e.instances(fctx, rc, down)
	cancel()
	if err != nil {
		return false, nil
	}
	trs := []fsstore.Guarded{{Transition: self, UpdateTime: c.tiTime}}
	for _, d := range down {
		v := docs[d]
		if v == nil || v.Rec.State != scheduler.TaskNone {
			return false, nil // decided by someone else: step by step
		}
		// A downstream with no document yet (`none`) is created by its queueing: Base.
		trs = append(trs, fsstore.Guarded{
			Transition: scheduler.Queue(v.Rec, scheduler.NewAttemptID(), true, now, e.cfg.RepublishAfter), UpdateTime: v.UpdateTime, Base: &v.Rec,
		})
	}
	result := fsstore.AttemptResult{State: res.State, EndedAt: now, Error: res.Error, ExitCode: res.ExitCode,
		XCom: string(res.XCom), Rendered: res.Rendered}
	c.mu.Lock()
	trs[0].UpdateTime = c.tiTime
	fctx, cancel = context.WithTimeout(ctx, e.callTimeout())
	err = e.store.CommitFinish(fctx, ref, result, trs)
	cancel()
	if err != nil && !isConflict(err) {
		// The answer may be lost while the commit landed: the attempt then holds this result.
		if a, rerr := c.reread(ctx, e.writePatience()); rerr == nil && a.Rec.State == res.State &&
			a.Rec.EndedAt != nil && a.Rec.EndedAt.Sub(now).Abs() < time.Microsecond {
			c.tiTime, err = a.UpdateTime, nil
		}
	}
	if err != nil {
		c.mu.Unlock()
		return false, nil
	}
	c.ended = now
	c.mu.Unlock()
	transitions := make([]scheduler.Transition, len(trs))
	for i, g := range trs {
		transitions[i] = g.Transition
	}
	e.applied(ref.DagID, ref.RunID, transitions...)
	e.logTaskFinished(ctx, ref, scheduler.TaskSuccess, res.State, span(c.started, c.ended), res.Error)
	pctx, cancel := context.WithTimeout(ctx, e.callTimeout())
	defer cancel()
	e.Stats.TasksQueued.Add(int64(len(trs) - 1))
	e.publishQueued(pctx, ref.DagID, ref.RunID, rc.spec, transitions[1:])
	e.publishEvent(pctx, ref, scheduler.TaskSuccess, c.Run.Version)
	return true, nil
}

// plainTask reports whether a task's success needs nothing but its downstream decided: no
// for_each expansion, no branch choice, no next run waiting on it (depends_on_past).
func plainTask(t *dag.Task) bool {
	return t.ForEach == nil && t.Type != "branch" && !t.DependsOnPast
}

// anyAlerts reports whether the DAG or one of its tasks posts alerts: then every task event
// matters, and the follow-up deadline guarantees it is published.
func anyAlerts(d *dag.DAG) bool {
	if d.Alerts != nil && d.Alerts.Slack != nil {
		return true
	}
	for i := range d.Tasks {
		if a := d.Tasks[i].Alerts; a != nil && a.Slack != nil {
			return true
		}
	}
	return false
}
