package console

import (
	"context"

	"github.com/updraft-dev/updraft/internal/fsstore"
)

// Operations is every operation the CLI does, for one caller. *Console bound to a caller
// (Console.As) is one implementation, for the CLI's local mode; the CLI's REST API client is
// the other, for --api, where the caller is whoever the bearer token names. The CLI writes
// each command once against it, so roles and the audit log apply the same in both modes.
type Operations interface {
	ListDAGs(ctx context.Context, q DAGQuery) (DAGPage, error)
	DAG(ctx context.Context, dagID string) (*DAGDetail, error)
	Deploy(ctx context.Context, req DeployRequest) (*DeployReport, error)
	SetPaused(ctx context.Context, dagID string, paused, dryRun bool) (*Affected, error)
	Trigger(ctx context.Context, req TriggerRequest) (*TriggerResult, error)
	Runs(ctx context.Context, dagID string, q PageQuery) (RunPage, error)
	FindRuns(ctx context.Context, runID string) ([]RunRef, error)
	Run(ctx context.Context, dagID, runID string) (*RunDetail, error)
	ClearRun(ctx context.Context, dagID, runID string, dryRun bool) (*Affected, error)
	Clear(ctx context.Context, req ClearRequest) (*Affected, error)
	Mark(ctx context.Context, req MarkRequest) (*Affected, error)
	Backfill(ctx context.Context, req BackfillRequest) (*BackfillResult, error)
	Backfills(ctx context.Context, dagID string) ([]BackfillView, error)
	CancelBackfill(ctx context.Context, id string, dryRun bool) (*Affected, error)
	Attempts(ctx context.Context, dagID, runID, taskID string) ([]AttemptView, error)
	Attempt(ctx context.Context, dagID, runID, taskID string, try int) (*AttemptDetail, error)
	Log(ctx context.Context, dagID, runID, taskID string, try int, after int64) (LogChunk, error)
	Variables(ctx context.Context) ([]fsstore.Variable, error)
	SetVariable(ctx context.Context, name, value string) error
	DeleteVariable(ctx context.Context, name string) error
	Users(ctx context.Context) ([]UserView, error)
	Grant(ctx context.Context, email, role string) (*UserView, error)
	Revoke(ctx context.Context, email string) error
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

var _ Operations = bound{}

// As returns the operations acting as who: each one authorised and audited as who.
func (c *Console) As(who Caller) Operations { return bound{c, who} }

// bound is a Console with its caller.
type bound struct {
	c   *Console
	who Caller
}

func (b bound) ListDAGs(ctx context.Context, q DAGQuery) (DAGPage, error) {
	return b.c.ListDAGs(ctx, b.who, q)
}
func (b bound) DAG(ctx context.Context, dagID string) (*DAGDetail, error) {
	return b.c.DAG(ctx, b.who, dagID)
}
func (b bound) Deploy(ctx context.Context, req DeployRequest) (*DeployReport, error) {
	return b.c.Deploy(ctx, b.who, req)
}
func (b bound) SetPaused(ctx context.Context, dagID string, paused, dryRun bool) (*Affected, error) {
	return b.c.SetPaused(ctx, b.who, dagID, paused, dryRun)
}
func (b bound) Trigger(ctx context.Context, req TriggerRequest) (*TriggerResult, error) {
	return b.c.Trigger(ctx, b.who, req)
}
func (b bound) Runs(ctx context.Context, dagID string, q PageQuery) (RunPage, error) {
	return b.c.Runs(ctx, b.who, dagID, q)
}
func (b bound) FindRuns(ctx context.Context, runID string) ([]RunRef, error) {
	return b.c.FindRuns(ctx, b.who, runID)
}
func (b bound) Run(ctx context.Context, dagID, runID string) (*RunDetail, error) {
	return b.c.Run(ctx, b.who, dagID, runID)
}
func (b bound) ClearRun(ctx context.Context, dagID, runID string, dryRun bool) (*Affected, error) {
	return b.c.ClearRun(ctx, b.who, dagID, runID, dryRun)
}
func (b bound) Clear(ctx context.Context, req ClearRequest) (*Affected, error) {
	return b.c.Clear(ctx, b.who, req)
}
func (b bound) Mark(ctx context.Context, req MarkRequest) (*Affected, error) {
	return b.c.Mark(ctx, b.who, req)
}
func (b bound) Backfill(ctx context.Context, req BackfillRequest) (*BackfillResult, error) {
	return b.c.Backfill(ctx, b.who, req)
}
func (b bound) Backfills(ctx context.Context, dagID string) ([]BackfillView, error) {
	return b.c.Backfills(ctx, b.who, dagID)
}
func (b bound) CancelBackfill(ctx context.Context, id string, dryRun bool) (*Affected, error) {
	return b.c.CancelBackfill(ctx, b.who, id, dryRun)
}
func (b bound) Attempts(ctx context.Context, dagID, runID, taskID string) ([]AttemptView, error) {
	return b.c.Attempts(ctx, b.who, dagID, runID, taskID)
}
func (b bound) Attempt(ctx context.Context, dagID, runID, taskID string, try int) (*AttemptDetail, error) {
	return b.c.Attempt(ctx, b.who, dagID, runID, taskID, try)
}
func (b bound) Log(ctx context.Context, dagID, runID, taskID string, try int, after int64) (LogChunk, error) {
	return b.c.Log(ctx, b.who, dagID, runID, taskID, try, after)
}
func (b bound) Variables(ctx context.Context) ([]fsstore.Variable, error) {
	return b.c.Variables(ctx, b.who)
}
func (b bound) SetVariable(ctx context.Context, name, value string) error {
	return b.c.SetVariable(ctx, b.who, name, value)
}
func (b bound) DeleteVariable(ctx context.Context, name string) error {
	return b.c.DeleteVariable(ctx, b.who, name)
}
func (b bound) Users(ctx context.Context) ([]UserView, error) { return b.c.Users(ctx, b.who) }
func (b bound) Grant(ctx context.Context, email, role string) (*UserView, error) {
	return b.c.Grant(ctx, b.who, email, role)
}
func (b bound) Revoke(ctx context.Context, email string) error { return b.c.Revoke(ctx, b.who, email) }
func (b bound) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	return b.c.Audit(ctx, b.who, q)
}
