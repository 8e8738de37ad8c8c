package taskrun

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// Context is what a task type gets to run one attempt.
type Context struct {
	Ref  scheduler.AttemptRef
	Task *dag.Task
	DAG  *dag.DAG
	Run  scheduler.Run
	// Log receives the attempt's log lines (secret values are masked in them).
	Log *tasks.Logger
	// Args is the task's `with`, its strings rendered as templates. Secret values appear in
	// clear here, for the type to use; never log them (Log masks them anyway).
	Args map[string]any
	// Secrets resolves secrets and connections at run time; every value it returns is masked
	// in the attempt's logs, error, XCom and stored arguments.
	Secrets Resolver
	// Getenv reads the worker's environment: the project and the emulator or stand-in hosts.
	Getenv func(string) string
	// Now is the engine's clock (sensors compare against it; tests use a fake one).
	Now func() time.Time
	// Runs reads and triggers DAG runs, for dag.trigger and sensor.dag_run.
	Runs Runs
	// Job holds a deferred type's job reference across the attempts of a try (deferred.go);
	// nil where nothing can hold it (the type then waits inline).
	Job JobHold
	// MaxTries is the number of the task's last try (`.ti.max_tries`): its retries plus one,
	// or more when the task was cleared.
	MaxTries int
	// Bundle is the root folder of the DAG version's bundle on this machine ("" when the DAG
	// was deployed without one); DAG.Bundle.File is the DAG file inside it.
	Bundle string
}

// Runs is what dag.trigger and sensor.dag_run need of the engine.
type Runs interface {
	// TriggerRun starts a run of a DAG for a logical date, or returns the one already there.
	TriggerRun(ctx context.Context, req engine.TriggerRequest) (run *scheduler.Run, created bool, err error)
	// RunAt finds a DAG's run for a logical date (nil when there is none).
	RunAt(ctx context.Context, dagID string, logical time.Time) (*scheduler.Run, error)
	// TaskState reads the state of a task in a run.
	TaskState(ctx context.Context, dagID, runID, taskID string) (scheduler.TaskState, error)
}

// Resolver and Connection are the plug-in API's (package tasks): a go task's function gets
// the same resolver as the built-in types.
type (
	Resolver   = tasks.Resolver
	Connection = tasks.Connection
)

// Func runs one attempt of a task type and returns its result. It must return when ctx ends
// (the task's timeout), stopping whatever it started.
type Func func(ctx context.Context, tc *Context) engine.Result

// Type is a registered task type.
type Type struct {
	Name string
	// Inline types run in the dispatcher; the others in a worker container (subprocess locally).
	Inline bool
	Run    Func
	// Check validates the type's `with` at `dags validate` time, before rendering (values may
	// still be templates). Nil accepts anything.
	Check func(with map[string]any) []dag.ArgProblem
	// InlineLimit bounds an inline attempt's Run (its context ends then), and InlineCleanup
	// the work its Run may still do after that (a bounded cancel): together the type's
	// worst-case time inside Dispatch's push request (inline.go).
	InlineLimit, InlineCleanup time.Duration
}

// Registry maps type names to their implementations.
type Registry struct{ types map[string]Type }

// Core returns a registry holding the built-in task types that need no cloud SDK; the
// worker's full set (internal/tasktypes.Builtins) adds the types that live with their
// adapters (BigQuery, Cloud Run, Pub/Sub, Slack).
func Core() *Registry {
	r := &Registry{types: map[string]Type{}}
	r.Add(Type{Name: "shell", Run: runShell})
	r.Add(HTTP())
	r.Add(Branch())
	r.Add(DagTrigger())
	r.Add(SensorDagRun())
	r.Add(SensorTime())
	r.Add(SensorHTTP())
	r.Add(GoTask())
	r.Add(Python())
	return r
}

// Add registers a type, replacing one of the same name. An inline type's Run is bounded by
// its InlineLimit (see boundInline).
func (r *Registry) Add(t Type) { r.types[t.Name] = boundInline(t) }

// Lookup finds a type.
func (r *Registry) Lookup(name string) (Type, error) {
	t, ok := r.types[name]
	if !ok {
		return Type{}, fmt.Errorf("tasks: no task type %q in this worker (it has %v)", name, r.Names())
	}
	return t, nil
}

// Inline reports whether a task message should run in the dispatcher rather than a worker.
func (r *Registry) Inline(msg scheduler.TaskMessage) bool {
	t, ok := r.types[msg.Type]
	return msg.Expand || ok && t.Inline && msg.Executor != "job"
}

// Names lists the registered types, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckArgs checks a task's `with` for its type, for dag.Options.CheckArgs.
func (r *Registry) CheckArgs(typ string, with map[string]any) []dag.ArgProblem {
	t, ok := r.types[typ]
	if !ok || t.Check == nil {
		return nil
	}
	return t.Check(with)
}

// IsTemplate reports whether an argument is a string holding a template (checked only once
// rendered).
func IsTemplate(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "{{")
}
