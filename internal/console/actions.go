package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// parseConf reads a trigger's conf: empty, null or a JSON object.
func parseConf(raw json.RawMessage) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, Errorf(CodeBadRequest, "conf is not valid JSON: %v (at byte %d)", se, se.Offset)
		case errors.As(err, &te):
			return nil, Errorf(CodeBadRequest, "conf must be a JSON object like {\"key\": \"value\"}, not a %s", te.Value)
		}
		return nil, Errorf(CodeBadRequest, "conf is not valid JSON: %v", err)
	}
	return conf, nil
}

// Trigger starts a manual run (operator or the DAG's owner). The conf must be a JSON object
// whose keys are the DAG's params, each of the same kind as its default.
//
// A paused DAG can be triggered, as in Airflow: pausing stops the schedule, not the hand of
// an operator; the run goes ahead (Updraft does not hold manual runs of a paused DAG) and the
// result carries a warning saying so. A removed DAG is a conflict.
func (c *Console) Trigger(ctx context.Context, who Caller, req TriggerRequest) (*TriggerResult, error) {
	out := &TriggerResult{Affected: Affected{DryRun: req.DryRun, Action: ActionTrigger, DagID: req.DagID}}
	err := c.action(ctx, who, req.DagID, ActionTrigger, access.Target{}, req.DryRun, func(d scheduler.DAGRecord) (string, error) {
		conf, err := parseConf(req.Conf)
		if err != nil {
			return "", err
		}
		spec, err := c.eng.Spec(ctx, d.DagID, d.Version)
		if err != nil {
			return "", err
		}
		if err := engine.CheckConf(spec, conf); err != nil {
			return "", wrapErr(CodeBadRequest, err)
		}
		T := c.now()
		if req.LogicalDate != nil {
			T = *req.LogicalDate
		}
		if d.Paused {
			out.Warnings = append(out.Warnings, fmt.Sprintf("DAG %s is paused: this manual run goes ahead anyway; scheduled runs stay stopped until it is unpaused", d.DagID))
		}
		tt, err := engine.Timetable(spec, T)
		if err != nil {
			return "", err
		}
		iv := tt.Infer(T)
		loc := spec.Location()
		run := scheduler.Run{DagID: d.DagID, RunID: scheduler.RunID(scheduler.RunManual, T), RunType: scheduler.RunManual,
			State: scheduler.RunQueued, LogicalDate: T.UTC()}
		if !req.DryRun {
			r, err := c.eng.SubmitTrigger(ctx, d.DagID, conf, T) // the advancer starts it
			var exists *engine.RunExistsError
			if errors.As(err, &exists) && req.Replace {
				gone, derr := c.eng.DeleteRunAt(ctx, d.DagID, exists.Existing.LogicalDate, false)
				if errors.Is(derr, engine.ErrRunActive) {
					return "", Errorf(CodeConflict, "%s/%s is still %s: only a finished run is replaced; wait for it, or clear it instead",
						d.DagID, exists.Existing.RunID, exists.Existing.State)
				}
				if derr != nil {
					return "", derr
				}
				for _, g := range gone {
					out.Warnings = append(out.Warnings, fmt.Sprintf("replaced %s/%s (%s)", d.DagID, g.RunID, g.State))
				}
				r, err = c.eng.SubmitTrigger(ctx, d.DagID, conf, T)
			}
			if errors.As(err, &exists) {
				return "", Errorf(CodeConflict, "%s already has a run with logical date %s: %s (one run per DAG and logical date; replace a finished one with --replace)",
					d.DagID, T.UTC().Format(time.RFC3339Nano), d.DagID+"/"+exists.Existing.RunID)
			}
			if errors.Is(err, engine.ErrRunExists) {
				return "", Errorf(CodeConflict, "a run of %s with logical date %s already exists", d.DagID, T.UTC().Format(time.RFC3339Nano))
			}
			if err != nil {
				return "", err
			}
			run = *r
		}
		out.Run = ptr(briefOf(run, loc))
		out.RunIDs = []string{run.RunID}
		out.LogicalDates = []string{run.LogicalDate.In(loc).Format(time.RFC3339)}
		out.DataIntervalStart, out.DataIntervalEnd = iv.Start.In(loc), iv.End.In(loc)
		out.Summary = fmt.Sprintf("start run %s of %s (logical date %s, data interval %s to %s)", run.RunID, d.DagID,
			run.LogicalDate.In(loc).Format(time.RFC3339), iv.Start.In(loc).Format(time.RFC3339), iv.End.In(loc).Format(time.RFC3339))
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetPaused pauses or unpauses a DAG (operator or owner).
func (c *Console) SetPaused(ctx context.Context, who Caller, dagID string, paused, dryRun bool) (*Affected, error) {
	action := ActionUnpause
	if paused {
		action = ActionPause
	}
	out := &Affected{DryRun: dryRun, Action: action, DagID: dagID}
	err := c.action(ctx, who, dagID, action, access.Target{}, dryRun, func(d scheduler.DAGRecord) (string, error) {
		switch {
		case d.Paused == paused:
			out.Summary = fmt.Sprintf("%s is already %s: nothing changes", dagID, map[bool]string{true: "paused", false: "unpaused"}[paused])
		case paused:
			out.Summary = fmt.Sprintf("pause %s: it creates no scheduled runs until unpaused; runs in flight go on", dagID)
		default:
			out.Summary = fmt.Sprintf("unpause %s: its schedule resumes (without catchup only the latest complete interval runs)", dagID)
		}
		if dryRun || d.Paused == paused {
			return out.Summary, nil
		}
		if err := c.eng.SetPaused(ctx, dagID, paused); err != nil {
			return "", err
		}
		if paused {
			out.Summary = fmt.Sprintf("paused %s: it creates no scheduled runs until unpaused; runs in flight go on", dagID)
		} else {
			out.Summary = fmt.Sprintf("unpaused %s: its schedule resumes (without catchup only the latest complete interval runs)", dagID)
		}
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// previewClear maps the engine's preview errors to not_found.
func (c *Console) previewClear(ctx context.Context, dagID, runID string, taskIDs []string, down, up bool) ([]string, error) {
	ids, err := c.eng.PreviewClear(ctx, dagID, runID, taskIDs, down, up)
	if errors.Is(err, engine.ErrUnknownTask) || errors.Is(err, engine.ErrNoRun) {
		return nil, wrapErr(CodeNotFound, err)
	}
	return ids, err
}

// Clear re-runs tasks of a run, with their downstream and/or upstream when asked (operator
// or owner). The preview lists the tasks the clear resets, computed with the engine's rule.
func (c *Console) Clear(ctx context.Context, who Caller, req ClearRequest) (*Affected, error) {
	out := &Affected{DryRun: req.DryRun, Action: ActionClear, DagID: req.DagID, RunID: req.RunID}
	t := access.Target{RunID: req.RunID, TaskID: strings.Join(req.TaskIDs, ",")}
	err := c.action(ctx, who, req.DagID, ActionClear, t, req.DryRun, func(scheduler.DAGRecord) (string, error) {
		if len(req.TaskIDs) == 0 {
			return "", Errorf(CodeBadRequest, "name at least one task to clear")
		}
		rv, err := c.getRun(ctx, req.DagID, req.RunID)
		if err != nil {
			return "", err
		}
		out.RunID = rv.Rec.RunID
		ids, err := c.previewClear(ctx, req.DagID, rv.Rec.RunID, req.TaskIDs, req.Downstream, req.Upstream)
		if err != nil {
			return "", err
		}
		out.TaskIDs = ids
		out.Summary = fmt.Sprintf("clear %d task(s) of %s/%s: %s", len(ids), req.DagID, rv.Rec.RunID, strings.Join(ids, ", "))
		if rv.Rec.State.Finished() {
			out.Warnings = append(out.Warnings, "the run is "+string(rv.Rec.State)+": it goes back to running")
		}
		if req.DryRun {
			return out.Summary, nil
		}
		cleared, err := c.eng.ClearTasks(ctx, req.DagID, rv.Rec.RunID, req.TaskIDs, req.Downstream, req.Upstream)
		if err != nil {
			return "", err
		}
		out.TaskIDs = nonNil(cleared)
		out.Summary = fmt.Sprintf("cleared %d task(s) of %s/%s: %s", len(cleared), req.DagID, rv.Rec.RunID, strings.Join(cleared, ", "))
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClearRun re-runs every task of a run (operator or owner).
func (c *Console) ClearRun(ctx context.Context, who Caller, dagID, runID string, dryRun bool) (*Affected, error) {
	out := &Affected{DryRun: dryRun, Action: ActionClearRun, DagID: dagID, RunID: runID}
	err := c.action(ctx, who, dagID, ActionClearRun, access.Target{RunID: runID}, dryRun, func(scheduler.DAGRecord) (string, error) {
		rv, err := c.getRun(ctx, dagID, runID)
		if err != nil {
			return "", err
		}
		out.RunID = rv.Rec.RunID
		spec, err := c.eng.Spec(ctx, dagID, rv.Rec.Version)
		if err != nil {
			return "", err
		}
		for _, t := range spec.Tasks {
			out.TaskIDs = append(out.TaskIDs, t.ID)
		}
		out.Summary = fmt.Sprintf("clear every task (%d) of %s/%s", len(out.TaskIDs), dagID, rv.Rec.RunID)
		if dryRun {
			return out.Summary, nil
		}
		cleared, err := c.eng.ClearRun(ctx, dagID, rv.Rec.RunID)
		if err != nil {
			return "", err
		}
		out.TaskIDs = nonNil(cleared)
		out.Summary = fmt.Sprintf("cleared %d task(s) of %s/%s", len(cleared), dagID, rv.Rec.RunID)
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Mark sets a task's state to success or failed by hand (operator or owner). A queued or
// running task is a conflict: wait for it, or clear it.
func (c *Console) Mark(ctx context.Context, who Caller, req MarkRequest) (*Affected, error) {
	out := &Affected{DryRun: req.DryRun, Action: ActionMark, DagID: req.DagID, RunID: req.RunID, TaskIDs: []string{req.TaskID}}
	t := access.Target{RunID: req.RunID, TaskID: req.TaskID}
	err := c.action(ctx, who, req.DagID, ActionMark, t, req.DryRun, func(scheduler.DAGRecord) (string, error) {
		state := scheduler.TaskState(req.State)
		if state != scheduler.TaskSuccess && state != scheduler.TaskFailed {
			return "", Errorf(CodeBadRequest, "state must be success or failed, not %q", req.State)
		}
		rv, err := c.getRun(ctx, req.DagID, req.RunID)
		if err != nil {
			return "", err
		}
		out.RunID = rv.Rec.RunID
		ti, err := c.eng.TaskInstance(ctx, req.DagID, rv.Rec.RunID, req.TaskID) // `none` for a task not started yet
		if errors.Is(err, fsstore.ErrNotFound) {
			return "", Errorf(CodeNotFound, "run %s/%s has no task %q", req.DagID, rv.Rec.RunID, req.TaskID)
		}
		if err != nil {
			return "", err
		}
		if s := ti.Rec.State; s == scheduler.TaskQueued || s == scheduler.TaskRunning {
			return "", Errorf(CodeConflict, "%s is %s: marking it is refused so its result can't race the mark; wait for it to finish, or clear it", req.TaskID, s)
		}
		out.Summary = fmt.Sprintf("mark %s of %s/%s %s (it is %s); its downstream is decided as if it ended so", req.TaskID, req.DagID, rv.Rec.RunID, state, ti.Rec.State)
		if req.DryRun {
			return out.Summary, nil
		}
		err = c.eng.MarkTask(ctx, req.DagID, rv.Rec.RunID, req.TaskID, state)
		if errors.Is(err, engine.ErrTaskActive) {
			return "", wrapErr(CodeConflict, err)
		}
		if err != nil {
			return "", err
		}
		// The run may stay finished with the same state: refresh the cells the grid keeps.
		if err := c.eng.RefreshRunCells(ctx, req.DagID, rv.Rec.RunID); err != nil {
			out.Warnings = append(out.Warnings, "the grid may show the old state for a while: "+err.Error())
		}
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Backfill starts a backfill (operator or owner); the preview lists each interval's logical
// date and what the backfill would do with it (create, rerun, skip).
func (c *Console) Backfill(ctx context.Context, who Caller, req BackfillRequest) (*BackfillResult, error) {
	out := &BackfillResult{Affected: Affected{DryRun: req.DryRun, Action: ActionBackfill, DagID: req.DagID}}
	t := access.Target{Subject: req.From + ".." + req.To}
	err := c.action(ctx, who, req.DagID, ActionBackfill, t, req.DryRun, func(d scheduler.DAGRecord) (string, error) {
		er := engine.BackfillRequest{DagID: req.DagID, From: req.From, To: req.To, Reprocess: req.Reprocess, MaxActiveRuns: req.MaxActiveRuns}
		if req.MaxActiveRuns < 0 {
			return "", Errorf(CodeBadRequest, "max_active_runs must be at least 1, got %d", req.MaxActiveRuns)
		}
		steps, err := c.eng.PreviewBackfill(ctx, er)
		if err != nil {
			return "", wrapErr(CodeBadRequest, err)
		}
		loc := location(d.Timezone)
		counts := map[string]int{}
		for _, s := range steps {
			counts[s.Action]++
			if s.Action != "skip" {
				out.RunIDs = append(out.RunIDs, s.RunID)
				out.LogicalDates = append(out.LogicalDates, s.Logical.In(loc).Format(time.RFC3339))
			}
		}
		reprocess := req.Reprocess
		if reprocess == "" {
			reprocess = scheduler.ReprocessNone
		}
		out.Summary = fmt.Sprintf("backfill %s from %s to %s (reprocess %s): %d interval(s): %d new run(s), %d re-run(s), %d left as they are",
			req.DagID, req.From, req.To, reprocess, len(steps), counts["create"], counts["rerun"], counts["skip"])
		if d.Paused {
			out.Warnings = append(out.Warnings, "the DAG is paused; a backfill runs anyway")
		}
		if req.DryRun {
			return out.Summary, nil
		}
		b, existing, err := c.eng.StartBackfill(ctx, er)
		if err != nil {
			return "", err
		}
		out.Backfill, out.Existing = ptr(backfillView(*b)), existing
		if existing {
			out.Warnings = append(out.Warnings, "the same range was already running: that backfill goes on")
		}
		return out.Summary + " (backfill " + b.ID + ")", nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CancelBackfill stops a backfill from creating more runs (operator or the DAG's owner).
func (c *Console) CancelBackfill(ctx context.Context, who Caller, id string, dryRun bool) (*Affected, error) {
	bv, err := c.store.GetBackfill(ctx, id)
	if errors.Is(err, fsstore.ErrNotFound) {
		if strings.TrimSpace(who.Email) == "" {
			return nil, Errorf(CodeUnauthenticated, "no identity: sign in (or send an ID token as Authorization: Bearer)")
		}
		return nil, Errorf(CodeNotFound, "no backfill %q (see the DAG's backfills)", id)
	}
	if err != nil {
		return nil, AsError(err)
	}
	b := bv.Rec
	out := &Affected{DryRun: dryRun, Action: ActionCancelBackfill, DagID: b.DagID}
	err = c.action(ctx, who, b.DagID, ActionCancelBackfill, access.Target{Subject: id}, dryRun, func(scheduler.DAGRecord) (string, error) {
		if b.State != scheduler.BackfillRunning {
			out.Summary = fmt.Sprintf("backfill %s is %s already: nothing changes", id, b.State)
			return out.Summary, nil
		}
		out.Summary = fmt.Sprintf("cancel backfill %s: %d of %d interval(s) handled; it creates no more runs, runs in flight go on",
			id, b.Created+b.Rerun+b.Skipped, b.Total)
		if dryRun {
			return out.Summary, nil
		}
		if err := c.eng.CancelBackfill(ctx, id); err != nil {
			return "", err
		}
		out.Summary = "cancelled" + strings.TrimPrefix(out.Summary, "cancel")
		return out.Summary, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// adminAction runs an action that needs admin, audited like the others.
func (c *Console) adminAction(ctx context.Context, who Caller, action string, t access.Target, do func() (string, error)) error {
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Admin, action, t); err != nil {
		return err
	}
	return c.finish(ctx, who, action, t, false, do)
}

// SetVariable stores a variable (admin).
func (c *Console) SetVariable(ctx context.Context, who Caller, name, value string) error {
	return c.adminAction(ctx, who, ActionSetVariable, access.Target{Subject: name}, func() (string, error) {
		if err := c.eng.SetVariable(ctx, name, value); err != nil {
			if strings.HasPrefix(err.Error(), "variable name") {
				return "", wrapErr(CodeBadRequest, err)
			}
			return "", err
		}
		return fmt.Sprintf("set (%d bytes)", len(value)), nil
	})
}

// DeleteVariable removes a variable (admin); not_found when it is not set.
func (c *Console) DeleteVariable(ctx context.Context, who Caller, name string) error {
	return c.adminAction(ctx, who, ActionDeleteVariable, access.Target{Subject: name}, func() (string, error) {
		err := c.store.DeleteVariable(ctx, name)
		if errors.Is(err, fsstore.ErrNotFound) {
			return "", Errorf(CodeNotFound, "no variable %q is set", name)
		}
		return "deleted", err
	})
}

// Grant gives a person a role (admin). The access service records it.
func (c *Console) Grant(ctx context.Context, who Caller, email, role string) (*UserView, error) {
	t := access.Target{Subject: email}
	first, noAdmin, err := c.firstAdminGrant(ctx, role)
	if err != nil {
		return nil, err
	}
	if first {
		if strings.TrimSpace(who.Email) == "" {
			return nil, Errorf(CodeUnauthenticated, "no identity: sign in (or send an ID token as Authorization: Bearer)")
		}
		key, err := access.NormalizeEmail(email)
		if err != nil {
			_ = c.record(ctx, who, access.ActionGrant, t, access.ResultRefused, err.Error())
			return nil, wrapErr(CodeBadRequest, err)
		}
		// The check that no one holds admin and the grant are one transaction: of local
		// first-admin grants racing, one goes through and the others are ordinary grants.
		prev, err := c.access.GrantFirstAdmin(ctx, key, c.actor(who))
		if err == nil {
			return &UserView{Email: key, Role: access.Admin.String(), GrantedBy: who.Email, GrantedAt: c.now(), Previous: prev.String()}, nil
		}
		if !errors.Is(err, access.ErrAdminExists) {
			_ = c.record(ctx, who, access.ActionGrant, t, access.ResultFailed, err.Error())
			return nil, AsError(err)
		}
		noAdmin = false // someone became admin meanwhile
	}
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Admin, access.ActionGrant, t); err != nil {
		if ce := AsError(err); noAdmin && ce.Code == CodeForbidden {
			return nil, &Error{Code: ce.Code, Status: ce.Status, Err: ce.Err,
				Message: ce.Message + "; no one holds admin yet: make the first admin with `updraft users grant EMAIL admin`"}
		}
		return nil, err
	}
	r, err := access.ParseRole(role)
	if err == nil {
		_, err = access.NormalizeEmail(email)
	}
	if err != nil {
		_ = c.record(ctx, who, access.ActionGrant, t, access.ResultRefused, err.Error())
		return nil, wrapErr(CodeBadRequest, err)
	}
	prev, err := c.access.Grant(ctx, email, r, c.actor(who))
	if err != nil {
		_ = c.record(ctx, who, access.ActionGrant, t, access.ResultFailed, err.Error())
		return nil, AsError(err)
	}
	key, _ := access.NormalizeEmail(email)
	return &UserView{Email: key, Role: r.String(), GrantedBy: who.Email, GrantedAt: c.now(), Previous: prev.String()}, nil
}

// firstAdminGrant reports whether a grant of role goes through without admin (with
// Config.FirstAdmin, a grant of admin while no one holds admin), and, with FirstAdmin,
// whether no one holds admin.
func (c *Console) firstAdminGrant(ctx context.Context, role string) (first, noAdmin bool, err error) {
	if !c.firstAdmin {
		return false, false, nil
	}
	gs, err := c.access.List(ctx)
	if err != nil {
		return false, false, AsError(err)
	}
	for _, g := range gs {
		if g.Role == access.Admin {
			return false, false, nil
		}
	}
	r, err := access.ParseRole(role)
	return err == nil && r == access.Admin, true, nil
}

// Revoke takes a person's role away (admin); not_found when they hold none.
func (c *Console) Revoke(ctx context.Context, who Caller, email string) error {
	t := access.Target{Subject: email}
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Admin, access.ActionRevoke, t); err != nil {
		return err
	}
	key, err := access.NormalizeEmail(email)
	if err != nil {
		return wrapErr(CodeBadRequest, err)
	}
	if r, err := c.access.RoleOf(ctx, key); err == nil && r == access.None {
		return Errorf(CodeNotFound, "%s holds no role", key)
	}
	if _, err := c.access.Revoke(ctx, key, c.actor(who)); err != nil {
		_ = c.record(ctx, who, access.ActionRevoke, t, access.ResultFailed, err.Error())
		return AsError(err)
	}
	return nil
}

func (c *Console) actor(who Caller) access.Actor {
	from := who.From
	if from == "" {
		from = "api"
	}
	if who.Addr != "" {
		from += " " + who.Addr
	}
	return access.Actor{Who: who.Email, From: from}
}
