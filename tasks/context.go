package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

// Context is what a go task's function gets of its attempt.
type Context struct {
	// Ref names the attempt: its DAG, run and task, TryNumber, and AttemptID (a good
	// idempotency key).
	Ref scheduler.AttemptRef
	// Run is the DAG run: RunID, RunType, LogicalDate, IntervalStart and IntervalEnd, Conf.
	Run scheduler.Run
	// DAG is the task's DAG.
	DAG DAG
	// Task is the task.
	Task Task
	// Log receives the attempt's log lines (secret values are masked in them).
	Log *Logger
	// Args is the task's `with`, its strings rendered as templates. Secret values appear in
	// clear here, for the function to use; never log them (Log masks them anyway).
	Args map[string]any
	// Secrets resolves secrets and connections at run time; every value it returns is masked
	// in the attempt's logs, error, XCom and stored arguments.
	Secrets Resolver
	// Getenv reads the worker's environment: the project and the emulator or stand-in hosts.
	Getenv func(string) string
	// Now is the clock; use it instead of time.Now so tests can fix it.
	Now func() time.Time
}

// DAG is what a function is told of its task's DAG.
type DAG struct {
	ID    string
	Owner string
	// Params are the DAG's params, a manual run's conf laid over them.
	Params map[string]any
	// Loc is the DAG's timezone (UTC when nil); Location reads it.
	Loc *time.Location
}

// Location is the DAG's timezone, the one its schedule and `.ds` are in.
func (d DAG) Location() *time.Location {
	if d.Loc == nil {
		return time.UTC
	}
	return d.Loc
}

// Task is what a function is told of its task.
type Task struct {
	ID string
	// Retries is how many times a failed try is retried; MaxTries is the number of the last
	// try (retries plus one, or more when the task was cleared), as `.ti.max_tries`.
	Retries, MaxTries int
	// Timeout bounds each try (0: none); ctx ends when it passes.
	Timeout time.Duration
}

// Resolver resolves secrets and connections where a task runs.
type Resolver interface {
	// Secret returns the latest version of a Secret Manager secret.
	Secret(ctx context.Context, name string) (string, error)
	// Conn returns connection ID from the secret updraft-connections-ID (JSON or URI).
	Conn(ctx context.Context, id string) (Connection, error)
}

// Connection is an Airflow-style connection.
type Connection struct {
	ID       string         `json:"conn_id"`
	Type     string         `json:"conn_type"`
	Host     string         `json:"host"`
	Login    string         `json:"login"`
	Password string         `json:"password"`
	Schema   string         `json:"schema"`
	Port     int            `json:"port"`
	Extra    map[string]any `json:"extra"`
}

// DecodeArg decodes the task argument `with.NAME` into v, a pointer, as encoding/json would.
// Template output is text, so a string argument is decoded as JSON: write a structured value
// as '{{ xcom "fetch_orders" | toJSON }}', a number as '{{ .params.limit }}'. A *string gets
// the string as it is. Values written in the DAG file without a template (mappings, lists,
// numbers) are decoded as they are.
func (tc *Context) DecodeArg(name string, v any) error {
	raw, ok := tc.Args[name]
	if !ok {
		return fmt.Errorf("with.%s is missing", name)
	}
	if s, ok := raw.(string); ok {
		if sp, ok := v.(*string); ok {
			*sp = s
			return nil
		}
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return fmt.Errorf("with.%s: %v (a template renders as text: write a structured value as '{{ xcom \"task\" | toJSON }}')", name, err)
		}
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fmt.Errorf("with.%s: %v", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("with.%s: %v", name, err)
	}
	return nil
}
