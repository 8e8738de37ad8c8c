package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// GoFunc is a Go function a `go` task runs (Airflow's python_callable). It gets the attempt's
// Context: its arguments in tc.Args (the task's `with`, rendered, `func` included), the run,
// the DAG, the log, secrets and the clock. It must return when ctx ends (the task's timeout).
//
// Its return value becomes the task's XCom (JSON-encoded; nil means no XCom). A non-nil error
// fails the try, and the task's retry policy applies; ErrSkip (wrapped or not) ends the task
// skipped instead. A panic fails the try with the panic's value.
type GoFunc func(ctx context.Context, tc *Context) (any, error)

// ErrSkip, returned by a GoFunc (wrapped or not), ends its task skipped: its downstream tasks
// follow their trigger rules, as after a shell task's exit 99. Wrap it to say why, in the log:
// fmt.Errorf("no orders for %s: %w", day, tasks.ErrSkip).
var ErrSkip = errors.New("skipped")

// goFuncs is the table of functions registered with Register.
var goFuncs = struct {
	sync.Mutex
	m map[string]GoFunc
}{m: map[string]GoFunc{}}

// Register makes f callable by `go` tasks as `with: {func: NAME}`. Call it from a custom
// worker's main, before worker.Main (see docs/tasks/go.md); nothing in this repository calls
// it from init.
//
// The functions are kept in a package-level table: the one documented exception to Updraft's
// "no global state" habit, because a custom worker's main is the only place that knows them
// and the built-in worker command it hands over to has no other way to find them.
//
// Register panics on an empty name, a nil function or a name registered twice: these are
// programming errors, caught the first time the worker starts.
func Register(name string, f GoFunc) {
	if strings.TrimSpace(name) == "" {
		panic("tasks.Register: empty function name")
	}
	if f == nil {
		panic(fmt.Sprintf("tasks.Register(%q): nil function", name))
	}
	goFuncs.Lock()
	defer goFuncs.Unlock()
	if _, dup := goFuncs.m[name]; dup {
		panic(fmt.Sprintf("tasks.Register(%q): a function of that name is already registered", name))
	}
	goFuncs.m[name] = f
}

// RegisteredFuncs lists the names of the functions registered with Register, sorted.
func RegisteredFuncs() []string {
	goFuncs.Lock()
	defer goFuncs.Unlock()
	out := make([]string, 0, len(goFuncs.m))
	for n := range goFuncs.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func lookupFunc(name string) (GoFunc, bool) {
	goFuncs.Lock()
	defer goFuncs.Unlock()
	f, ok := goFuncs.m[name]
	return f, ok
}

// goReturnGrace is how long a go task's function has, once its context ends (the task's
// timeout or the worker being stopped), to return before the try is failed without it.
const goReturnGrace = 5 * time.Second

// GoTask is the `go` task type (Airflow's PythonOperator): it calls the function registered
// under `with.func` with the task's other arguments. It is a container type: it runs in the
// worker (a Cloud Run job execution, a subprocess locally), which must be a custom build that
// registers the function (docs/tasks/go.md).
func GoTask() Type {
	return Type{Name: "go", Run: goRunner(goReturnGrace), Check: checkGo}
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

// goRunner runs a go task; grace is how long a function has to return once ctx ends.
func goRunner(grace time.Duration) Func {
	return func(ctx context.Context, tc *Context) engine.Result {
		name, _ := tc.Args["func"].(string)
		if strings.TrimSpace(name) == "" {
			return final("go: with.func is empty: name the function to call, as registered with tasks.Register")
		}
		f, ok := lookupFunc(name)
		if !ok {
			return final(unknownFunc(name))
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
			o.value, o.err = f(ctx, tc)
			o.normal = true
		}()
		var o goOutcome
		select {
		case o = <-done:
		case <-ctx.Done():
			select {
			case o = <-done:
			case <-time.After(grace):
				return failed(nil, fmt.Sprintf("%s: %v; the function did not return within %s of it (it must return when its ctx ends)",
					name, context.Cause(ctx), grace))
			}
		}
		if !o.normal {
			tc.Log.Error(fmt.Sprintf("%s panicked: %v\n%s", name, o.panic, o.stack))
			return failed(nil, fmt.Sprintf("%s panicked: %v", name, o.panic))
		}
		if ctx.Err() != nil {
			msg := fmt.Sprintf("%s: %v", name, context.Cause(ctx))
			if o.err != nil {
				msg += ": " + o.err.Error()
			}
			return failed(nil, msg)
		}
		if errors.Is(o.err, ErrSkip) {
			tc.Log.Info(fmt.Sprintf("%s: %v", name, o.err))
			return engine.Result{State: scheduler.AttemptSkipped}
		}
		if o.err != nil {
			return failed(nil, fmt.Sprintf("%s: %v", name, o.err))
		}
		xcom, err := goXCom(o.value)
		if err != nil {
			return failed(nil, fmt.Sprintf("%s returned a %T that is not JSON-encodable, so it can't be the task's XCom: %v (return maps, slices, strings, numbers, booleans, or structs of them)",
				name, o.value, err))
		}
		return engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	}
}

// unknownFunc explains a `with.func` this worker does not have.
func unknownFunc(name string) string {
	names := RegisteredFuncs()
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
