package engine

import (
	"context"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

// The engine applies the state machine's typed transitions (scheduler.Queue, Claim, Finish,
// Settle): read the instance, decide, write with the precondition that it is unchanged since
// the read, and on a conflict read again and decide again. Every transition applied goes
// through apply or commitFinish, which tell the recorder.

// Applied is a transition the engine applied to a task instance of a run.
type Applied struct {
	DagID, RunID string
	scheduler.Transition
}

// recorder holds the function told of every applied transition (RecordTransitions).
type recorder struct {
	mu sync.RWMutex
	f  func(Applied)
}

// RecordTransitions has f called with every transition the engine applies from now on, after
// its write succeeded: a test harness records them to assert what a scenario did. f must be
// quick and safe for concurrent use; nil stops recording.
func (e *Engine) RecordTransitions(f func(Applied)) {
	e.rec.mu.Lock()
	e.rec.f = f
	e.rec.mu.Unlock()
}

func (e *Engine) applied(dagID, runID string, trs ...scheduler.Transition) {
	e.rec.mu.RLock()
	f := e.rec.f
	e.rec.mu.RUnlock()
	if f == nil {
		return
	}
	for _, tr := range trs {
		f(Applied{DagID: dagID, RunID: runID, Transition: tr})
	}
}

// apply writes one transition on a task instance read at updateTime.
func (e *Engine) apply(ctx context.Context, dagID, runID string, updateTime time.Time, tr scheduler.Transition) (time.Time, error) {
	ut, err := e.store.ApplyTransition(ctx, dagID, runID, updateTime, tr)
	if err == nil {
		e.applied(dagID, runID, tr)
	}
	return ut, err
}
