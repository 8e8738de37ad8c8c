package console

import (
	"context"
	"errors"
	"strings"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Actions as the audit log names them.
const (
	ActionTrigger        = "dag.trigger"
	ActionPause          = "dag.pause"
	ActionUnpause        = "dag.unpause"
	ActionClear          = "task.clear"
	ActionMark           = "task.mark"
	ActionClearRun       = "run.clear"
	ActionBackfill       = "backfill.start"
	ActionCancelBackfill = "backfill.cancel"
	ActionSetVariable    = "variables.set"
	ActionDeleteVariable = "variables.delete"
)

// authRead checks that the caller may read (viewer, anywhere).
func (c *Console) authRead(ctx context.Context, who Caller) error {
	return c.authorize(ctx, who, scheduler.DAGRecord{}, access.Viewer, "", access.Target{})
}

// authorize checks that the caller holds need on dag. A refusal of an action (action set) is
// recorded in the audit log.
func (c *Console) authorize(ctx context.Context, who Caller, dag scheduler.DAGRecord, need access.Role, action string, t access.Target) error {
	if strings.TrimSpace(who.Email) == "" {
		return Errorf(CodeUnauthenticated, "no identity: sign in (or send an ID token as Authorization: Bearer)")
	}
	err := c.access.Authorize(ctx, who.Email, dag, need)
	var de *access.DeniedError
	if errors.As(err, &de) {
		de.Action = action
		if action != "" {
			_ = c.record(ctx, who, action, t, access.ResultRefused, de.Error())
		}
		return wrapErr(CodeForbidden, de)
	}
	if err != nil {
		return AsError(err)
	}
	return nil
}

// record appends an audit entry for the caller.
func (c *Console) record(ctx context.Context, who Caller, action string, t access.Target, result, detail string) error {
	from := who.From
	if from == "" {
		from = "api"
	}
	if who.Addr != "" {
		from += " " + who.Addr
	}
	return c.access.Record(ctx, access.Event{Actor: access.Actor{Who: who.Email, From: from}, Action: action, Target: t, Result: result, Detail: detail})
}

// getDAG reads a DAG record: not_found with a hint when it is not deployed.
func (c *Console) getDAG(ctx context.Context, dagID string) (*fsstore.Versioned[scheduler.DAGRecord], error) {
	v, err := c.store.GetDAG(ctx, dagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, Errorf(CodeNotFound, "no DAG %q is deployed (see the DAG list)", dagID)
	}
	if err != nil {
		return nil, AsError(err)
	}
	return v, nil
}

// getRun reads a run: not_found when it does not exist.
func (c *Console) getRun(ctx context.Context, dagID, runID string) (*fsstore.Versioned[scheduler.Run], error) {
	v, err := c.store.GetRun(ctx, dagID, runID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, Errorf(CodeNotFound, "DAG %s has no run %q", dagID, runID)
	}
	if err != nil {
		return nil, AsError(err)
	}
	return v, nil
}

// action runs one state-changing operation on a DAG: it reads the DAG (404), authorises the
// caller (403, audited), refuses a removed DAG (409, audited), and records the outcome.
// do returns what it did (or would do, on a dry run: then nothing is written or recorded).
func (c *Console) action(ctx context.Context, who Caller, dagID, action string, t access.Target, dryRun bool,
	do func(dag scheduler.DAGRecord) (string, error)) error {
	d, err := c.getDAG(ctx, dagID)
	if err != nil {
		return err
	}
	t.DagID = dagID
	if err := c.authorize(ctx, who, d.Rec, access.Operator, action, t); err != nil {
		return err
	}
	if !d.Rec.Active {
		msg := "DAG " + dagID + " was removed (its file is gone): deploy it again to act on it; its history stays readable"
		if !dryRun {
			_ = c.record(ctx, who, action, t, access.ResultRefused, msg)
		}
		return Errorf(CodeConflict, "%s", msg)
	}
	return c.finish(ctx, who, action, t, dryRun, func() (string, error) { return do(d.Rec) })
}

// finish runs do and records its outcome (not on a dry run).
func (c *Console) finish(ctx context.Context, who Caller, action string, t access.Target, dryRun bool, do func() (string, error)) error {
	detail, err := do()
	if dryRun {
		if err != nil {
			return AsError(err)
		}
		return nil
	}
	if err != nil {
		ce := AsError(err)
		result := access.ResultFailed
		if ce.Status < 500 {
			result = access.ResultRefused
		}
		_ = c.record(ctx, who, action, t, result, ce.Message)
		return ce
	}
	if rerr := c.record(ctx, who, action, t, access.ResultOK, detail); rerr != nil {
		return Errorf(CodeInternal, "%s done, but it could not be recorded in the audit log: %v", action, rerr)
	}
	return nil
}
