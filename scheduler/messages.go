package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadMessage marks a message that can never be handled.
var ErrBadMessage = errors.New("bad message")

// TaskMessage is what the tasks topic carries: a queued attempt and how to execute it, so the
// dispatcher needs no read to decide where it runs.
type TaskMessage struct {
	AttemptRef
	Type      string `json:"type"`
	Executor  string `json:"executor,omitempty"` // "" (the type decides) or "job"
	Resources string `json:"resources,omitempty"`
	// TimeoutSeconds is the task's execution timeout (0: none).
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
	// Expand marks the attempt that evaluates a for_each task's list: it runs inline whatever
	// the task's type, and its result creates the instances.
	Expand bool `json:"expand,omitempty"`
	// CancelJob, when set, asks the dispatcher to cancel a deferred task's job (an
	// engine.JobRef as JSON) instead of running an attempt: the dispatcher is where the
	// permissions on the users' jobs are. AttemptID is then the attempt that submitted it.
	CancelJob string `json:"cancel_job,omitempty"`
}

// TaskEvent is what the events topic carries: a task instance reached a state.
type TaskEvent struct {
	AttemptRef
	State TaskState `json:"state"`
	// Followed is true when the publisher already did the fast-follow for this event (the
	// worker, after recording its result): the advancer then has nothing to redo.
	Followed bool `json:"followed,omitempty"`
	// StartRun asks the advancer to start a queued run (TaskID is RunStartTask): clients
	// create a run and publish this rather than driving it themselves.
	StartRun bool `json:"start_run,omitempty"`
	// Version is the run's DAG version when the publisher knew it: a consumer that needs only
	// the DAG (the alerter, to see whether any alert applies) then reads no run.
	Version string `json:"version,omitempty"`
}

// RunStartTask is the task id of a StartRun event: no task can have it ("__" is reserved).
const RunStartTask = "__run_start__"

// Validate reports a reference missing what every handler needs.
func (r AttemptRef) Validate() error {
	switch {
	case r.DagID == "":
		return fmt.Errorf("%w: dag_id is empty", ErrBadMessage)
	case r.RunID == "":
		return fmt.Errorf("%w: run_id is empty", ErrBadMessage)
	case r.TaskID == "":
		return fmt.Errorf("%w: task_id is empty", ErrBadMessage)
	case r.AttemptID == "":
		return fmt.Errorf("%w: attempt_id is empty", ErrBadMessage)
	case r.TryNumber < 1:
		return fmt.Errorf("%w: try_number %d is not ≥ 1", ErrBadMessage, r.TryNumber)
	}
	return nil
}

// DecodeTaskMessage parses and checks a tasks-topic message.
func DecodeTaskMessage(data []byte) (TaskMessage, error) {
	var m TaskMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: task message is not JSON: %v", ErrBadMessage, err)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	if m.Type == "" {
		return m, fmt.Errorf("%w: task message has no type", ErrBadMessage)
	}
	return m, nil
}

// DecodeTaskEvent parses and checks an events-topic message.
func DecodeTaskEvent(data []byte) (TaskEvent, error) {
	var ev TaskEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("%w: task event is not JSON: %v", ErrBadMessage, err)
	}
	if ev.DagID == "" || ev.RunID == "" || ev.TaskID == "" {
		return ev, fmt.Errorf("%w: task event needs dag_id, run_id and task_id", ErrBadMessage)
	}
	return ev, nil
}
