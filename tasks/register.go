package tasks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
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

// Registered finds the function registered under name (the worker's `go` task type calls it).
func Registered(name string) (GoFunc, bool) {
	goFuncs.Lock()
	defer goFuncs.Unlock()
	f, ok := goFuncs.m[name]
	return f, ok
}
