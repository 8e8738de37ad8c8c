package local

import (
	"context"
	"os"
	"syscall"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/proctree"
)

// ProcessRef names a local process as an executor reference: `local:PID:STARTTIME`, with the
// kernel's start time so a reused pid is not mistaken for the worker.
func ProcessRef(pid int) string { return proctree.Ref(pid) }

// Processes is the local executor: a worker is alive while its process is, or while the
// supervisor of its task's process tree still runs (after the worker died, the supervisor
// is killing what the task left; see internal/proctree). So once Alive says false, none of
// the attempt's processes is left, and its retry cannot overlap them.
//
// An attempt of a warm worker (Pool) has a PooledRef: when this process runs the pool, it is
// alive while its worker still runs it (the worker reports each attempt done, recorded or
// not: a worker that could not record an outcome lives on, and its attempt must be found
// lost); otherwise while its worker is, or a tree that worker supervised is not gone yet.
// Cancel stops that attempt alone through Pool when this process runs the pool, and
// otherwise leaves it to the worker's lease renewal, which finds the attempt no longer its
// own and stops the task. An inline attempt, run by the dispatcher in its own process, has
// a reference of the same form (the dispatcher's process and the attempt): it is alive
// while that process is, and Cancel, from whatever process, never signals the dispatcher.
type Processes struct {
	// Pool is this process's pool of warm workers (nil: none).
	Pool *Pool
}

var _ engine.Executor = Processes{}

// Alive reports whether the process a `local:PID:STARTTIME` reference names still runs, or
// a task process tree it supervised is not gone yet. A reference of another kind is unknown
// here, which counts as gone.
func (x Processes) Alive(_ context.Context, ref string) (bool, error) {
	ref, attemptID := splitRef(ref)
	if _, ok := proctree.ParseRef(ref); ok {
		if attemptID != "" && x.Pool != nil {
			if known, running := x.Pool.Running(ref, attemptID); known {
				return running, nil // its tree ends before the worker reports it done
			}
		}
		return true, nil
	}
	return len(proctree.Supervisors(ref)) > 0, nil
}

// Cancel sends SIGTERM to the worker process a reference names, if it still runs; the worker
// then stops its task's process tree and records the outcome. Supervisors left by a worker
// that died get SIGTERM too: they kill their trees and exit.
func (x Processes) Cancel(_ context.Context, ref string) error {
	ref, attemptID := splitRef(ref)
	pid, ok := proctree.ParseRef(ref)
	if ok && attemptID != "" {
		if x.Pool != nil {
			x.Pool.Cancel(ref, attemptID)
		}
		return nil
	}
	if !ok {
		for _, s := range proctree.Supervisors(ref) {
			_ = syscall.Kill(s, syscall.SIGTERM)
		}
		return nil
	}
	if pid == os.Getpid() { // an inline run in this very process is not killed
		return nil
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}
