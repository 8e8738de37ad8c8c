package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Runs advance server-side. A client (the CLI, the API, the UI) creates a run and publishes
// its start (SubmitRun); the advancer starts it (StartRun) and does its cascade. A starter
// holds a lease on the run while it cascades (the run's tick_due_at); should it die, the
// tick sweeps the run once the lease passes (sweepRun) and finishes what it left. Chains of
// noop tasks are completed in batches (runAhead), so a long one takes seconds.

// finishedBy is the state a decision that needs no attempt gives a task.
func finishedBy(dec scheduler.Decision) scheduler.TaskState {
	switch dec {
	case scheduler.Skip:
		return scheduler.TaskSkipped
	case scheduler.FailUpstream:
		return scheduler.TaskUpstreamFailed
	}
	return scheduler.TaskSuccess // a noop that is ready
}

// earliest returns the earlier of two optional times.
func earliest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.Before(*b):
		return a
	}
	return b
}

// decideInMemory applies a task's trigger rule to the states of its upstream tasks when all
// of them are known (state returns them); ok is false when one is not, or when the rule
// needs more than states (an upstream branch's choice).
func decideInMemory(rc *runCtx, id string, known map[string]scheduler.TaskState) (scheduler.Decision, bool) {
	return decideWith(rc, id, func(n string) (scheduler.TaskState, bool) { s, ok := known[n]; return s, ok })
}

func decideWith(rc *runCtx, id string, state func(string) (scheduler.TaskState, bool)) (scheduler.Decision, bool) {
	task, ok := rc.spec.Task(id)
	if !ok {
		return scheduler.Wait, false
	}
	if !scheduler.WaitsForUpstream(task.TriggerRule) {
		return scheduler.Ready, true
	}
	c := scheduler.UpstreamCounts{Total: len(task.Needs)}
	for _, n := range task.Needs {
		if ut, ok := rc.spec.Task(n); !ok || ut.Type == "branch" {
			return scheduler.Wait, false
		}
		s, ok := state(n)
		if !ok {
			return scheduler.Wait, false
		}
		if !s.Finished() {
			continue
		}
		c.Done++
		switch s {
		case scheduler.TaskSuccess:
			c.Success++
		case scheduler.TaskFailed:
			c.Failed++
		case scheduler.TaskUpstreamFailed:
			c.UpstreamFailed++
		case scheduler.TaskSkipped:
			c.Skipped++
		}
	}
	dec, err := scheduler.Evaluate(task.TriggerRule, c)
	return dec, err == nil
}

// getBatch bounds the documents of one batched read.
const getBatch = 300

// runAhead completes, in batched reads and atomic conditional writes, the tasks downstream
// of from whose outcome follows from states already known (a noop whose upstream succeeded,
// a skip or an upstream failure that propagates), transitively. Any instance no longer
// `none` (someone else decided it) is left out with what follows it, and a batch that loses
// a race is left to the caller's one-by-one path. It returns the tasks it finished, which it
// adds to known.
func (e *Engine) runAhead(ctx context.Context, rc *runCtx, from string, known map[string]scheduler.TaskState) ([]string, error) {
	planned := map[string]scheduler.TaskState{}
	state := func(id string) (scheduler.TaskState, bool) {
		if s, ok := planned[id]; ok {
			return s, true
		}
		s, ok := known[id]
		return s, ok
	}
	var plan []string
	queue := append([]string(nil), rc.downstream[from]...)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if _, ok := state(d); ok {
			continue
		}
		task, ok := rc.spec.Task(d)
		if !ok || task.DependsOnPast || task.ForEach != nil {
			continue
		}
		dec, ok := decideWith(rc, d, state)
		if !ok || dec == scheduler.Wait || (dec == scheduler.Ready && task.Type != "noop") {
			continue
		}
		planned[d] = finishedBy(dec)
		plan = append(plan, d)
		queue = append(queue, rc.downstream[d]...)
	}
	if len(plan) < 2 {
		return nil, nil // one task: the one-by-one path costs the same
	}
	docs, err := e.instances(ctx, rc, plan) // mostly `none` with no document: each write creates its instance
	if err != nil {
		return nil, err
	}
	now := e.now()
	left := map[string]bool{}
	var ups []fsstore.TaskInstanceUpdate
	var ids []string
	var trs []scheduler.Transition
	for _, d := range plan {
		v := docs[d]
		skip := v == nil || v.Rec.State != scheduler.TaskNone
		task, _ := rc.spec.Task(d)
		for _, n := range task.Needs {
			skip = skip || left[n]
		}
		if skip {
			left[d] = true
			continue
		}
		tr := scheduler.Transition{TaskID: d, From: v.Rec.State, To: planned[d], Set: scheduler.TaskSet{EndedAt: scheduler.To(&now)}}
		if planned[d] == scheduler.TaskSuccess {
			tr.Set.StartedAt = scheduler.To(&now)
		}
		ups = append(ups, fsstore.TaskInstanceUpdate{TI: &v.Rec, UpdateTime: v.UpdateTime, Fields: fsstore.TransitionFields(tr)})
		ids = append(ids, d)
		trs = append(trs, tr)
	}
	var written []string
	for i := 0; i < len(ups); i += fsstore.MaxBatch {
		j := min(i+fsstore.MaxBatch, len(ups))
		err := e.store.UpdateTaskInstancesIf(ctx, ups[i:j])
		if isConflict(err) {
			break // the rest is decided one by one
		}
		if err != nil {
			return written, err
		}
		e.applied(rc.run.DagID, rc.run.RunID, trs[i:j]...)
		for _, id := range ids[i:j] {
			known[id] = planned[id]
			written = append(written, id)
		}
	}
	return written, nil
}

// sweepRun finds what a run's cascade left undone (a starter, a worker or an operation that
// died half-way) and does it: every `none` task whose upstream tasks have all finished, or
// that waits for nothing, is decided, and the cascade goes on from there; a run whose tasks
// have all finished is settled. It reads the run's task instances once: the tick calls it
// only for runs whose lease passed. A task with no instance document is `none`.
func (e *Engine) sweepRun(ctx context.Context, rc *runCtx) error {
	tis, err := e.listInstances(ctx, rc)
	if err != nil {
		return err
	}
	states := make(map[string]scheduler.TaskState, len(tis))
	known := map[string]scheduler.TaskState{}
	for _, v := range tis {
		states[v.Rec.TaskID] = v.Rec.State
		if v.Rec.State.Finished() {
			known[v.Rec.TaskID] = v.Rec.State
		}
	}
	var done []string
	for _, t := range rc.spec.Tasks {
		if s, ok := states[t.ID]; !ok || s != scheduler.TaskNone {
			continue
		}
		force := scheduler.Ready
		if len(t.Needs) > 0 && scheduler.WaitsForUpstream(t.TriggerRule) {
			dec, ok := decideInMemory(rc, t.ID, known)
			switch {
			case !ok:
				force = -1 // count, as the cascade would
			case dec == scheduler.Wait:
				continue
			default:
				force = dec
			}
		}
		st, finished, _, err := e.decideState(ctx, rc, t.ID, force)
		if err != nil {
			return err
		}
		if finished {
			known[t.ID] = st
			done = append(done, t.ID)
		}
	}
	return e.cascadeKnown(ctx, rc, done, known)
}

// releaseLease gives up a starter's lease on a running run: its tick_due_at goes back to its
// dagrun_timeout (or none). ut is the update time the lease was written at; a run changed
// since is re-read, and left alone once finished or released.
func (e *Engine) releaseLease(ctx context.Context, dagID, runID string, ut time.Time, timeout *time.Time) {
	for range 3 {
		_, err := e.store.ApplyRunChange(ctx, dagID, runID, ut, scheduler.RunChange{TickDueAt: scheduler.To(timeout)})
		if !isConflict(err) {
			if err != nil {
				e.log.Warn("could not release the run's start lease; the tick will sweep it", "dag_id", dagID, "run_id", runID, "error", err)
			}
			return
		}
		v, err := e.store.GetRun(ctx, dagID, runID)
		if err != nil || v.Rec.State != scheduler.RunRunning || v.Rec.TickDueAt == nil {
			return
		}
		if v.Rec.TimeoutAt != nil && v.Rec.TickDueAt.Equal(*v.Rec.TimeoutAt) {
			return
		}
		ut, timeout = v.UpdateTime, v.Rec.TimeoutAt
	}
}

// holdRun puts a lease on a running run while an operation (a clear, a mark) cascades in it:
// its tick_due_at a start grace away (or its dagrun_timeout, if sooner). If the caller dies
// before it calls the returned release, the tick sweeps the run once the lease passes.
func (e *Engine) holdRun(ctx context.Context, dagID, runID string) (release func()) {
	for range 3 {
		v, err := e.store.GetRun(ctx, dagID, runID)
		if err != nil || v.Rec.State != scheduler.RunRunning {
			return func() {}
		}
		lease := e.now().Add(e.cfg.StartGrace)
		ut, err := e.store.ApplyRunChange(ctx, dagID, runID, v.UpdateTime, scheduler.RunChange{TickDueAt: scheduler.To(earliest(&lease, v.Rec.TimeoutAt))})
		if isConflict(err) {
			continue
		}
		if err != nil {
			return func() {}
		}
		return func() { e.releaseLease(ctx, dagID, runID, ut, v.Rec.TimeoutAt) }
	}
	return func() {}
}

// tickRunning handles a running run whose tick_due_at passed: past its dagrun_timeout it
// fails; otherwise its starter's lease passed, and the run is swept.
func (e *Engine) tickRunning(ctx context.Context, v *fsstore.Versioned[scheduler.Run], now time.Time) error {
	rc, err := e.runCtxOf(ctx, v.Rec, v.UpdateTime)
	if err != nil {
		return err
	}
	to := v.Rec.TimeoutAt
	if (to == nil && rc.spec.DagrunTimeout > 0) || (to != nil && !now.Before(*to)) {
		return e.timeoutRun(ctx, rc, now) // (a run started before timeout_at existed has only tick_due_at)
	}
	e.Stats.RunsSwept.Add(1)
	if err := e.sweepRun(ctx, rc); err != nil {
		return err
	}
	e.releaseLease(ctx, v.Rec.DagID, v.Rec.RunID, v.UpdateTime, to)
	return nil
}

// ---- starting runs from events

// publishStart asks the advancer to start a queued run. A failed publish is logged: the tick
// starts the run once its start grace passes.
func (e *Engine) publishStart(ctx context.Context, r *scheduler.Run) {
	ev, _ := json.Marshal(scheduler.TaskEvent{
		AttemptRef: scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: scheduler.RunStartTask}, StartRun: true,
	})
	if err := e.pub.PublishEvent(ctx, ev); err != nil {
		e.Stats.PublishFailures.Add(1)
		e.log.Warn("publish run start failed; the tick will start the run", "dag_id", r.DagID, "run_id", r.RunID, "error", err)
	}
}

// StartRun starts a queued run (the advancer's part of SubmitRun): a run already started is
// left alone. A run that does not exist is an error wrapping fsstore.ErrNotFound.
func (e *Engine) StartRun(ctx context.Context, dagID, runID string) error {
	v, err := e.store.GetRun(ctx, dagID, runID)
	if err != nil {
		return err
	}
	return e.startRun(ctx, v)
}

// SubmitTrigger is Trigger for clients: it creates the manual run and returns; the advancer
// starts it (SubmitRun).
func (e *Engine) SubmitTrigger(ctx context.Context, dagID string, conf map[string]any, T time.Time) (*scheduler.Run, error) {
	nr, err := e.manualRun(ctx, dagID, conf, T)
	if err != nil {
		return nil, err
	}
	return e.SubmitRun(ctx, nr)
}

// handleEventFirst handles the events the advancer acts on besides a finished task's
// fast-follow: a run's start, and a task waiting in up_for_retry or up_for_reschedule (its
// timer). handled is false for the others.
func (e *Engine) handleEventFirst(ctx context.Context, ev scheduler.TaskEvent) (handled bool, err error) {
	switch {
	case ev.StartRun:
		err := e.StartRun(ctx, ev.DagID, ev.RunID)
		if errors.Is(err, fsstore.ErrNotFound) {
			e.Stats.BadMessages.Add(1)
			return true, fmt.Errorf("%w: start of unknown run %s/%s", scheduler.ErrBadMessage, ev.DagID, ev.RunID)
		}
		return true, err
	case ev.State == scheduler.TaskUpForRetry || ev.State == scheduler.TaskUpForReschedule:
		return true, e.armTimer(ctx, ev)
	}
	return false, nil
}

// ---- timers for waits shorter than the tick's period

// TimerMax bounds the waits the advancer times itself (a retry's delay, a sensor's next
// poke); longer ones, and any whose timer is lost with its process, are the tick's.
const TimerMax = 10 * time.Minute

// timers holds the armed timers by task instance and attempt, so a redelivered event arms
// none twice.
type timers struct{ m sync.Map }

// armTimer queues a task's retry (or its sensor's next poke) when it is due, if that is
// within TimerMax: the tick's period no longer delays a short retry_delay. The timer lives
// as long as ctx (the advancer's); if it is lost, the tick queues the task as before.
func (e *Engine) armTimer(ctx context.Context, ev scheduler.TaskEvent) error {
	v, err := e.store.GetTaskInstance(ctx, ev.DagID, ev.RunID, ev.TaskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ti := v.Rec
	if ti.AttemptID != ev.AttemptID || ti.State != ev.State || ti.TickDueAt == nil {
		return nil // moved on already
	}
	wait := ti.TickDueAt.Sub(e.now())
	if wait > TimerMax {
		return nil
	}
	key := ti.Key() + "~" + ti.AttemptID + "~" + string(ti.State)
	if _, dup := e.timers.m.LoadOrStore(key, true); dup {
		return nil
	}
	t := time.AfterFunc(max(wait, 0), func() {
		defer e.timers.m.Delete(key)
		if ctx.Err() != nil {
			return
		}
		if err := e.fireTimer(ctx, ev); err != nil && ctx.Err() == nil {
			e.log.Warn("timed retry failed; the tick will queue it", "dag_id", ev.DagID, "run_id", ev.RunID, "task_id", ev.TaskID, "error", err)
		}
	})
	context.AfterFunc(ctx, func() { t.Stop(); e.timers.m.Delete(key) })
	return nil
}

// fireTimer queues the task a timer waited for, if it still waits and is due (the tick's
// own path, so the two racing queue it once).
func (e *Engine) fireTimer(ctx context.Context, ev scheduler.TaskEvent) error {
	v, err := e.store.GetTaskInstance(ctx, ev.DagID, ev.RunID, ev.TaskID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := e.now()
	if v.Rec.AttemptID != ev.AttemptID || v.Rec.State != ev.State || v.Rec.TickDueAt == nil || v.Rec.TickDueAt.After(now) {
		return nil
	}
	kind, err := e.tickTask(ctx, v, now)
	if err == nil && kind != "" {
		e.Stats.Timed.Add(1)
		e.log.Debug("queued on time by the advancer's timer", slog.String(LogKeyDagID, ev.DagID), slog.String(LogKeyRunID, ev.RunID), slog.String("task_id", ev.TaskID), slog.String("kind", kind))
	}
	return err
}
