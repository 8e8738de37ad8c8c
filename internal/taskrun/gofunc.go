package taskrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// goReturnGrace is how long a go task's function has, once its context ends (the task's
// timeout or the worker being stopped), to return before the try is failed without it.
const goReturnGrace = 5 * time.Second

// GoTask is the `go` task type (Airflow's PythonOperator): it calls the function registered
// under `with.func` with the task's other arguments. It is a container type: it runs in the
// worker (a Cloud Run job execution, a subprocess locally), which must be a custom build that
// registers the function (docs/tasks/go.md).
func GoTask() Type {
	return Type{Name: "go", Run: goRunner(goReturnGrace, goFuncs{tasks.Registered, tasks.RegisteredFuncs}), Check: checkGo}
}

func checkGo(with map[string]any) []dag.ArgProblem {
	v, ok := with["func"]
	if !ok {
		return []dag.ArgProblem{{Arg: "func", Msg: "a go task needs with.func: the name its function is registered under",
			Hint: "func: dedupe_orders   (registered with tasks.Register in your worker's main; see docs/tasks/go.md)"}}
	}
	if s, ok := v.(string); !ok || strings.TrimSpace(s) == "" {
		return []dag.ArgProblem{{Arg: "func", Msg: fmt.Sprintf("with.func must be a function's name, not %v", v),
			Hint: "func: dedupe_orders"}}
	}
	return nil // the other arguments are the function's own
}

// goOutcome is what a function returned, or how it panicked.
type goOutcome struct {
	value  any
	err    error
	panic  any
	stack  []byte
	normal bool
}

// goFuncs finds the functions a go task may call: the ones registered with tasks.Register
// (tests use a table of their own).
type goFuncs struct {
	lookup func(name string) (tasks.GoFunc, bool)
	names  func() []string
}

// goRunner runs a go task; grace is how long a function has to return once ctx ends.
func goRunner(grace time.Duration, funcs goFuncs) Func {
	return func(ctx context.Context, tc *Context) engine.Result {
		name, _ := tc.Args["func"].(string)
		if strings.TrimSpace(name) == "" {
			return Final("go: with.func is empty: name the function to call, as registered with tasks.Register")
		}
		f, ok := funcs.lookup(name)
		if !ok {
			return Final(unknownFunc(name, funcs.names()))
		}
		done := make(chan goOutcome, 1)
		go func() {
			var o goOutcome
			defer func() {
				if !o.normal {
					o.panic, o.stack = recover(), debug.Stack()
				}
				done <- o
			}()
			o.value, o.err = f(ctx, pluginContext(tc))
			o.normal = true
		}()
		var o goOutcome
		select {
		case o = <-done:
		case <-ctx.Done():
			select {
			case o = <-done:
			case <-time.After(grace):
				return Failed(nil, fmt.Sprintf("%s: %v; the function did not return within %s of it (it must return when its ctx ends)",
					name, context.Cause(ctx), grace))
			}
		}
		if !o.normal {
			tc.Log.Error(fmt.Sprintf("%s panicked: %v\n%s", name, o.panic, o.stack))
			return Failed(nil, fmt.Sprintf("%s panicked: %v", name, o.panic))
		}
		if ctx.Err() != nil {
			msg := fmt.Sprintf("%s: %v", name, context.Cause(ctx))
			if o.err != nil {
				msg += ": " + o.err.Error()
			}
			return Failed(nil, msg)
		}
		if errors.Is(o.err, tasks.ErrSkip) {
			tc.Log.Info(fmt.Sprintf("%s: %v", name, o.err))
			return engine.Result{State: scheduler.AttemptSkipped}
		}
		if o.err != nil {
			return Failed(nil, fmt.Sprintf("%s: %v", name, o.err))
		}
		xcom, err := goXCom(o.value)
		if err != nil {
			return Failed(nil, fmt.Sprintf("%s returned a %T that is not JSON-encodable, so it can't be the task's XCom: %v (return maps, slices, strings, numbers, booleans, or structs of them)",
				name, o.value, err))
		}
		return engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	}
}

// unknownFunc explains a `with.func` this worker does not have.
func unknownFunc(name string, names []string) string {
	have := "no functions registered: it is the stock worker"
	if len(names) > 0 {
		have = "functions " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("go: no function %q in this worker (it has %s). A go task runs in a custom worker build "+
		"whose main registers its functions with tasks.Register, and which the dispatcher must start "+
		"(UPDRAFT_WORKER_CMD locally, the worker job's image on GCP): see docs/tasks/go.md", name, have)
}

// goXCom encodes a function's return value as its XCom: nil is none.
func goXCom(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// pluginContext is what a go task's function gets of its attempt: the plug-in API's Context,
// made of public types only (a custom worker's module can't import internal packages).
func pluginContext(tc *Context) *tasks.Context {
	out := &tasks.Context{Ref: tc.Ref, Run: tc.Run, Log: tc.Log, Args: tc.Args, Secrets: tc.Secrets, Getenv: tc.Getenv, Now: tc.Now,
		Task: tasks.Task{ID: tc.Ref.TaskID, MaxTries: tc.MaxTries}}
	if d := tc.DAG; d != nil {
		out.DAG = tasks.DAG{ID: d.ID, Owner: d.Owner, Params: d.Params, Loc: d.Location()}
	}
	if t := tc.Task; t != nil {
		out.Task.Retries, out.Task.Timeout = t.Retries, t.Timeout
	}
	return out
}
