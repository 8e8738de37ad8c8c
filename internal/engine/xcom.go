package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// MaxXComBytes bounds one task's XCom value. Firestore documents hold at most 1 MiB, and
// XCom is for small results: large ones belong in a table or a file whose name is passed on.
const MaxXComBytes = 256 << 10

// XCom returns the XCom value a task's current attempt recorded in a run. Only a task that
// ended success has one.
func (e *Engine) XCom(ctx context.Context, dagID, runID, taskID string) (json.RawMessage, error) {
	ti, err := e.TaskInstance(ctx, dagID, runID, taskID) // a task not started yet is `none`: no XCom
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, fmt.Errorf("xcom: run %s/%s has no task %q", dagID, runID, taskID)
	}
	if err != nil {
		return nil, err
	}
	if ti.Rec.State != scheduler.TaskSuccess {
		return nil, fmt.Errorf("xcom: task %q is %s in this run; only a task that succeeded has an XCom", taskID, ti.Rec.State)
	}
	if ti.Rec.MapCount != nil {
		return e.mappedXCom(ctx, ti.Rec)
	}
	if ti.Rec.AttemptID == "" { // marked success by hand
		return json.RawMessage("null"), nil
	}
	return xcomOf(&ti.Rec), nil
}

// PrevSuccessStart is the data interval start of the DAG's latest successful run before a
// logical date (Airflow's prev_data_interval_start_success), or nil.
func (e *Engine) PrevSuccessStart(ctx context.Context, dagID string, before time.Time) (*time.Time, error) {
	r, err := e.store.PrevSuccessRun(ctx, dagID, before)
	if err != nil || r == nil {
		return nil, err
	}
	return &r.Rec.IntervalStart, nil
}

var varName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// SetVariable stores a variable (a non-secret value templates read with `var`).
func (e *Engine) SetVariable(ctx context.Context, name, value string) error {
	if !varName.MatchString(name) {
		return fmt.Errorf("variable name %q: use letters, digits, _, - and . (at most 200)", name)
	}
	if !fsstore.CanBeDocID(name) { // ".", "..", "__x__": Firestore refuses them as ids
		return fmt.Errorf("variable name %q: not \".\", \"..\" or of the form __x__ (reserved)", name)
	}
	return e.store.SetVariable(ctx, fsstore.Variable{Name: name, Value: value, UpdatedAt: e.now()})
}

// Variable returns a variable from the store; ok is false when it is not set.
func (e *Engine) Variable(ctx context.Context, name string) (string, bool, error) {
	v, err := e.store.GetVariable(ctx, name)
	if errors.Is(err, fsstore.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v.Value, true, nil
}

// xcomOf is the XCom its latest attempt recorded on an instance ("null" for none).
func xcomOf(ti *scheduler.TaskInstance) json.RawMessage {
	if a := ti.Attempt; a != nil && a.ID == ti.AttemptID && a.XCom != "" {
		return json.RawMessage(a.XCom)
	}
	return json.RawMessage("null")
}
