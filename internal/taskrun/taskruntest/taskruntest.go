// Package taskruntest holds what the tests of task types share, in taskrun and in the
// adapters' packages (internal/bq, internal/runjobs, ...): an in-memory job hold, a deferred
// attempt's Context, a connections resolver. Only tests import it.
package taskruntest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// MemHold is a task instance's job field as a deferred type sees it through its claim,
// kept in memory, so a test can lose what a dying process would not have saved.
type MemHold struct {
	Ref     string
	Started time.Time
	Saves   int
}

var _ taskrun.JobHold = (*MemHold)(nil)

// Job is the job saved, if any.
func (h *MemHold) Job() (engine.JobRef, bool) { return engine.ParseJobRef(h.Ref) }

// SaveJob keeps ref and counts the saves.
func (h *MemHold) SaveJob(_ context.Context, ref engine.JobRef) error {
	h.Ref, h.Saves = ref.String(), h.Saves+1
	return nil
}

// WaitStarted is when the try's wait started.
func (h *MemHold) WaitStarted() time.Time { return h.Started }

// MustRef is the job saved in h; the test fails without one.
func MustRef(t *testing.T, h *MemHold) engine.JobRef {
	t.Helper()
	r, ok := h.Job()
	if !ok {
		t.Fatal("no job saved")
	}
	return r
}

// DeferredContext is one attempt of a deferred task over hold, its log in the buffer.
func DeferredContext(t *testing.T, env map[string]string, hold *MemHold, try int, attemptID string, task *dag.Task, args map[string]any) (*taskrun.Context, *bytes.Buffer) {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "t", TryNumber: try, AttemptID: attemptID}
	var buf bytes.Buffer
	log, err := tasks.NewLogger(&buf, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &taskrun.Context{Ref: ref, Task: task, Args: args, Log: log, Job: hold, Now: time.Now,
		Getenv: func(k string) string { return env[k] }}, &buf
}

// WaitFor polls cond every 20 ms until it holds, failing the test after 30 s.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not a timing assumption
	}
}

// Conns resolves the connections it holds, and no secret.
type Conns map[string]tasks.Connection

// Secret fails: no secrets here.
func (f Conns) Secret(context.Context, string) (string, error) { return "", io.EOF }

// Conn returns the connection id, or io.EOF.
func (f Conns) Conn(_ context.Context, id string) (tasks.Connection, error) {
	c, ok := f[id]
	if !ok {
		return c, io.EOF
	}
	return c, nil
}

// LogMessages is the messages of a log's JSON lines (tasks.Entry), one a line.
func LogMessages(t *testing.T, raw string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		if line == "" {
			continue
		}
		var e tasks.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e.Message)
	}
	return strings.Join(out, "\n")
}
