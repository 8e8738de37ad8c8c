package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// TickReport says what one Tick did.
type TickReport struct {
	// Digest is how many failures the digest posted this tick listed (0: none posted).
	Digest int `json:"digest"`
	// SLAMisses counts the missed SLAs found (each alerted once, where alerts ask for it).
	SLAMisses int `json:"sla_misses"`
	// Errors are the problems that did not stop the tick.
	Errors []string `json:"errors,omitempty"`
}

// Tick does the alerts' timed work: the failure digest when it is due, and the SLAs that
// passed by now. It is safe to run concurrently with itself, in any number of processes: the
// digest is posted once and each SLA miss alerted once.
func (a *Alerter) Tick(ctx context.Context, now time.Time) (TickReport, error) {
	var rep TickReport
	if a.cfg.DigestChannel != "" {
		n, err := a.digest(ctx, now)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		rep.Digest = n
	}
	due, err := a.store.SLADueRuns(ctx, now, a.cfg.TickBatch)
	if err != nil {
		return rep, fmt.Errorf("alerts: tick: %w", err)
	}
	for _, v := range due {
		n, err := a.checkSLA(ctx, v, now)
		rep.SLAMisses += n
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	return rep, nil
}

// digest posts the failures since the last digest when one is due, and returns how many it
// listed. The cursor moves (a conditional write) before the post, so of two ticks one posts.
func (a *Alerter) digest(ctx context.Context, now time.Time) (int, error) {
	id := chanHash(a.cfg.DigestChannel)
	var v *fsstore.Versioned[fsstore.DigestCursor]
	for v == nil {
		var err error
		v, err = a.store.GetDigestCursor(ctx, id)
		if errors.Is(err, fsstore.ErrNotFound) {
			// The first digest covers the last period.
			c := &fsstore.DigestCursor{Channel: a.cfg.DigestChannel, Since: now.Add(-a.cfg.DigestEvery), NextAt: now, UpdatedAt: now}
			ut, err := a.store.CreateDigestCursor(ctx, id, c)
			if errors.Is(err, fsstore.ErrExists) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("alerts: digest cursor: %w", err)
			}
			v = &fsstore.Versioned[fsstore.DigestCursor]{Rec: *c, UpdateTime: ut}
		} else if err != nil {
			return 0, fmt.Errorf("alerts: digest cursor: %w", err)
		}
	}
	if now.Before(v.Rec.NextAt) {
		return 0, nil
	}
	since := v.Rec.Since
	_, err := a.store.UpdateDigestCursorIf(ctx, id, v.UpdateTime, map[string]any{
		"since": now, "next_at": now.Add(a.cfg.DigestEvery), "updated_at": now,
	})
	if errors.Is(err, fsstore.ErrConflict) {
		return 0, nil // another tick took this digest
	}
	if err != nil {
		return 0, fmt.Errorf("alerts: move the digest cursor: %w", err)
	}
	failed, err := a.store.FailedTaskInstances(ctx, since, now, a.cfg.TickBatch+1)
	if err != nil {
		return 0, fmt.Errorf("alerts: digest: %w", err)
	}
	if len(failed) == 0 {
		return 0, nil
	}
	more := 0
	if len(failed) > a.cfg.TickBatch {
		failed, more = failed[:a.cfg.TickBatch], 1 // at least one more
	}
	c, err := a.client(ctx, a.cfg.DigestConnection)
	if err != nil {
		a.giveUp(err, "kind", "digest", "channel", a.cfg.DigestChannel)
		return 0, nil
	}
	owners := map[string]string{}       // dag id → owner email
	locs := map[string]*time.Location{} // dag id → timezone
	mention := map[string]string{}      // owner email → how to name them
	items := make([]DigestItem, 0, len(failed))
	for _, f := range failed {
		ti := f.Rec
		if _, ok := owners[ti.DagID]; !ok {
			owners[ti.DagID], locs[ti.DagID] = "", time.UTC
			if d, err := a.store.GetDAG(ctx, ti.DagID); err == nil {
				owners[ti.DagID] = d.Rec.Owner
				if loc, err := time.LoadLocation(d.Rec.Timezone); err == nil {
					locs[ti.DagID] = loc
				}
			}
		}
		email := owners[ti.DagID]
		if _, ok := mention[email]; !ok {
			mention[email] = c.owner(ctx, email)
		}
		logical := time.Time{}
		if rv, err := a.store.GetRun(ctx, ti.DagID, ti.RunID); err == nil {
			logical = rv.Rec.LogicalDate
		}
		items = append(items, DigestItem{DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, TryNumber: ti.TryNumber,
			LogicalDate: logical, Loc: locs[ti.DagID], Error: ti.Error, OwnerEmail: email, Owner: mention[email],
			Started: ti.StartedAt, Ended: ti.EndedAt})
	}
	msg := DigestMessage(items, since, now, a.cfg.UIURL, more)
	if _, _, err := c.post(ctx, now.Add(a.cfg.ClaimTTL*3/4), a.cfg.DigestChannel, "", msg); err != nil {
		a.giveUp(err, "kind", "digest", "channel", a.cfg.DigestChannel, "failures", len(items))
		return 0, nil
	}
	a.Stats.Posted.Add(1)
	return len(items), nil
}

// slaCheck is one SLA of a run: the DAG's (task "") or a task's.
type slaCheck struct {
	task string
	sla  time.Duration
	due  time.Time
}

// checkSLA alerts the SLAs of a run that passed since its sla_due_at, then moves sla_due_at
// to the next SLA still ahead (nil: none), by a conditional write. Each miss's claim keeps it
// from being alerted twice, whoever runs the check.
func (a *Alerter) checkSLA(ctx context.Context, v fsstore.Versioned[scheduler.Run], now time.Time) (int, error) {
	misses := 0
	for range 20 {
		run := v.Rec
		if run.SLADueAt == nil {
			return misses, nil
		}
		spec, err := a.specs.Spec(ctx, run.DagID, run.Version)
		if err != nil {
			return misses, fmt.Errorf("alerts: SLA of %s: %w", run.Key(), err)
		}
		var checks []slaCheck
		if spec.SLA > 0 {
			checks = append(checks, slaCheck{sla: spec.SLA, due: run.IntervalEnd.Add(spec.SLA)})
		}
		for _, t := range spec.Tasks {
			if t.SLA > 0 {
				checks = append(checks, slaCheck{task: t.ID, sla: t.SLA, due: run.IntervalEnd.Add(t.SLA)})
			}
		}
		var next *time.Time
		var errs []error
		for _, c := range checks {
			if c.due.Before(*run.SLADueAt) {
				continue // checked before
			}
			finished, endedAt, err := a.slaTarget(ctx, &run, c.task)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if c.due.After(now) {
				if !finished && (next == nil || c.due.Before(*next)) {
					next = &c.due
				}
				continue
			}
			if finished && endedAt != nil && !endedAt.After(c.due) {
				continue // made it in time
			}
			misses++
			if err := a.slaMiss(ctx, &run, spec, c); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return misses, errors.Join(errs...) // sla_due_at stays: the next tick tries again
		}
		_, err = a.store.SetSLADueIf(ctx, &run, v.UpdateTime, next)
		if !errors.Is(err, fsstore.ErrConflict) {
			if err != nil {
				return misses, fmt.Errorf("alerts: move the SLA deadline of %s: %w", run.Key(), err)
			}
			return misses, nil
		}
		nv, err := a.store.GetRun(ctx, run.DagID, run.RunID)
		if err != nil {
			return misses, fmt.Errorf("alerts: SLA of %s: %w", run.Key(), err)
		}
		v, misses = *nv, 0 // decided again; misses already alerted are claimed
	}
	return misses, fmt.Errorf("alerts: SLA of %s: too many concurrent changes", v.Rec.Key())
}

// slaTarget reports whether the run (task "") or its task has finished, and when.
func (a *Alerter) slaTarget(ctx context.Context, run *scheduler.Run, task string) (bool, *time.Time, error) {
	if task == "" {
		return run.State.Finished(), run.EndedAt, nil
	}
	ti, err := a.store.GetTaskInstance(ctx, run.DagID, run.RunID, task)
	if errors.Is(err, fsstore.ErrNotFound) {
		return run.State.Finished(), run.EndedAt, nil // not started (`none`: no document yet), or a for_each template
	}
	if err != nil {
		return false, nil, fmt.Errorf("alerts: SLA of %s: %w", scheduler.TaskKey(run.DagID, run.RunID, task), err)
	}
	return ti.Rec.State.Finished(), ti.Rec.EndedAt, nil
}

// slaMiss alerts one missed SLA where the alerts ask for sla_miss: the DAG's alerts for the
// DAG's SLA, the task's (or the DAG's) for a task's.
func (a *Alerter) slaMiss(ctx context.Context, run *scheduler.Run, spec *dag.DAG, c slaCheck) error {
	cfg := dagAlerts(spec)
	if c.task != "" {
		cfg, _ = taskAlerts(spec, c.task)
	}
	if cfg == nil || !wants(cfg, KindSLAMiss, scopeTask) {
		return nil
	}
	ch, err := a.channel(ctx, spec, run, c.task, cfg.Channel)
	if err != nil {
		a.giveUp(err, "dag_id", run.DagID, "run_id", run.RunID, "task_id", c.task, "kind", KindSLAMiss)
		return nil
	}
	alert := Alert{Kind: KindSLAMiss, DagID: run.DagID, RunID: run.RunID, TaskID: c.task, LogicalDate: run.LogicalDate,
		Loc: spec.Location(), SLA: c.sla, SLADue: c.due, UIURL: a.cfg.UIURL}
	key := fmt.Sprintf("sla~%s~%s~%d", run.Key(), c.task, c.due.Unix())
	return a.deliver(ctx, delivery{key: key, conn: cfg.Connection, channel: ch, run: *run, spec: spec, alert: alert})
}
