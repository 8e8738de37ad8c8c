package engine

import (
	"context"

	"github.com/updraft-dev/updraft/internal/dag"
)

// Slots for max_active_tasks. A task ready while its run already has max_active_tasks queued
// or running waits in `scheduled`; finishing tasks fill the freed slots. The limit is
// checked by counting, without a shared counter document (which would be hot), so tasks
// decided at the same instant can exceed it by a few; it is never exceeded for long.

// limited reports whether max_active_tasks can ever bind for this DAG: the widest set of
// tasks that may run at once is at most the task count minus the longest chain plus one.
func limited(d *dag.DAG) bool {
	for _, t := range d.Tasks {
		if t.ForEach != nil {
			return true // its width is known only at run time
		}
	}
	return len(d.Tasks)-longestChain(d)+1 > d.MaxActiveTasks
}

func longestChain(d *dag.DAG) int {
	depth := map[string]int{}
	best := 0
	for _, id := range topoOrder(d) {
		t, _ := d.Task(id)
		n := 1
		for _, up := range t.Needs {
			n = max(n, depth[up]+1)
		}
		depth[id] = n
		best = max(best, n)
	}
	return best
}

// runFull reports whether a run has no free slot for another task.
func (e *Engine) runFull(ctx context.Context, rc *runCtx) (bool, error) {
	if !rc.limited {
		return false, nil
	}
	n, err := e.store.CountActiveTasks(ctx, rc.run.Key())
	return n >= rc.spec.MaxActiveTasks, err
}

// fillSlots queues scheduled tasks into the run's free slots.
func (e *Engine) fillSlots(ctx context.Context, rc *runCtx) error {
	if !rc.limited {
		return nil
	}
	n, err := e.store.CountActiveTasks(ctx, rc.run.Key())
	if err != nil {
		return err
	}
	free := rc.spec.MaxActiveTasks - n
	if free <= 0 {
		return nil
	}
	waiting, err := e.store.ScheduledTasks(ctx, rc.run.Key(), free)
	if err != nil {
		return err
	}
	for i := range waiting {
		task, ok := rc.task(waiting[i].Rec.TaskID)
		if !ok {
			continue
		}
		if err := e.queue(ctx, rc, task, &waiting[i], true); err != nil && !isConflict(err) {
			return err
		}
	}
	return nil
}
