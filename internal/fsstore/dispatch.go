package fsstore

import (
	"context"
	"time"
)

// ColDispatches holds the dispatcher's record of the container execution it started for an
// attempt, by attempt id. The attempt document itself is the worker's alone (its renewals
// and result are fenced by its update time), so the dispatcher never writes it.
const ColDispatches = "dispatches"

// Dispatch is the dispatcher's hold on starting an attempt's execution: a delivery creates it
// (the first wins), starts the execution and records its name; a redelivery that finds it
// leaves a live execution alone.
type Dispatch struct {
	AttemptID string `firestore:"attempt_id" json:"attempt_id"`
	DagID     string `firestore:"dag_id" json:"dag_id"`
	RunID     string `firestore:"run_id" json:"run_id"`
	TaskID    string `firestore:"task_id" json:"task_id"`
	// Execution is the full name of the execution started; "" while a start is in flight.
	Execution string `firestore:"execution" json:"execution,omitempty"`
	// StartingAt is when the current start began (the engine's clock); a start in flight
	// longer than the engine's bound is taken over by a later delivery.
	StartingAt time.Time `firestore:"starting_at" json:"starting_at"`
	// Starts counts executions started for the attempt (more than one only when an
	// execution ended without claiming it).
	Starts int    `firestore:"starts" json:"starts"`
	Error  string `firestore:"error" json:"error,omitempty"`
	// ExpireAt lets Firestore's TTL delete the record with its run.
	ExpireAt time.Time `firestore:"expire_at" json:"-"`
}

// CreateDispatch creates an attempt's dispatch record; ErrExists means another delivery holds it.
func (s *Store) CreateDispatch(ctx context.Context, d *Dispatch) (time.Time, error) {
	res, err := s.fs.Collection(ColDispatches).Doc(d.AttemptID).Create(ctx, d)
	s.wrote(ColDispatches, d.AttemptID, err)
	if err != nil {
		return time.Time{}, mapErr("fsstore: create dispatch "+d.AttemptID, err)
	}
	return res.UpdateTime, nil
}

// GetDispatch reads an attempt's dispatch record.
func (s *Store) GetDispatch(ctx context.Context, attemptID string) (*Versioned[Dispatch], error) {
	return get[Dispatch](ctx, s, ColDispatches, attemptID)
}

// UpdateDispatchIf changes fields of a dispatch record if it is unchanged since updateTime.
func (s *Store) UpdateDispatchIf(ctx context.Context, attemptID string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColDispatches, attemptID, updateTime, fields)
}
