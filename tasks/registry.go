package tasks

import (
	"context"
	"fmt"
	"sort"

	"github.com/updraft-dev/updraft/dag"
	"github.com/updraft-dev/updraft/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Context is what a task type gets to run one attempt.
type Context struct {
	Ref  scheduler.AttemptRef
	Task *dag.Task
	DAG  *dag.DAG
	Run  scheduler.Run
	// Log receives the attempt's log lines.
	Log *Logger
}

// Func runs one attempt of a task type and returns its result. It must return when ctx ends
// (the task's timeout), stopping whatever it started.
type Func func(ctx context.Context, tc *Context) engine.Result

// Type is a registered task type.
type Type struct {
	Name string
	// Inline types run in the dispatcher; the others in a worker container (subprocess locally).
	Inline bool
	Run    Func
}

// Registry maps type names to their implementations.
type Registry struct{ types map[string]Type }

// Builtins returns a registry holding the built-in task types.
func Builtins() *Registry {
	r := &Registry{types: map[string]Type{}}
	r.Add(Type{Name: "shell", Run: runShell})
	return r
}

// Add registers a type, replacing one of the same name.
func (r *Registry) Add(t Type) { r.types[t.Name] = t }

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
	return ok && t.Inline && msg.Executor != "job"
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
