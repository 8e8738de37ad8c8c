// Package consoletest builds a Console over the emulators for tests of the console, the API
// and the CLI: an engine with a fake clock, an access service, a worker that runs built-in
// tasks in-process with logs on disk, and helpers to deploy DAGs and grant roles.
//
// Only tests import it.
package consoletest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// Clock is a fake clock tests move by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock on.
func (c *Clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Bundle is everything a test needs.
type Bundle struct {
	Ctx     context.Context
	Project string
	Store   *fsstore.Store
	Queue   *psqueue.Queue
	Engine  *engine.Engine
	Access  *access.Service
	Console *console.Console
	Worker  *taskrun.Worker
	Clock   *Clock
}

// New builds a Bundle on a fresh emulator project (the test binary's TestMain must call
// emutest.Main).
func New(t testing.TB) *Bundle {
	t.Helper()
	ctx := context.Background()
	project := emutest.Project(t)
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	clk := &Clock{t: time.Date(2025, 1, 10, 0, 30, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(st, q, engine.Config{}, clk.Now, log)
	acc := access.New(st, clk.Now)
	c := console.New(console.Config{Engine: eng, Store: st, Access: acc, Logs: console.FileLogs{}, Now: clk.Now})
	w := &taskrun.Worker{Engine: eng, Registry: tasktypes.Builtins(), Name: "test", LogDir: t.TempDir(), Stdout: io.Discard, Log: log}
	return &Bundle{Ctx: ctx, Project: project, Store: st, Queue: q, Engine: eng, Access: acc, Console: c, Worker: w, Clock: clk}
}

// Advance runs the advancer on the bundle's events until the test ends, as a deployment
// does: runs the console triggers are started from their start events.
func (b *Bundle) Advance(t testing.TB) {
	ctx, cancel := context.WithCancel(b.Ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Queue.Receive(ctx, psqueue.SubAdvance, 16, b.Engine.HandleEvent) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Deploy parses and deploys a DAG file.
func (b *Bundle) Deploy(t testing.TB, src string) *dag.DAG {
	t.Helper()
	d, err := dag.Parse("test.yaml", []byte(src), dag.Options{
		ValidateCron: func(s string) error { _, err := schedule.ParseCron(s); return err },
	})
	if err != nil {
		t.Fatalf("parse DAG: %v", err)
	}
	if _, err := b.Engine.Deploy(b.Ctx, d, []byte(src)); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return d
}

// Grant gives email a role.
func (b *Bundle) Grant(t testing.TB, email string, role access.Role) {
	t.Helper()
	if _, err := b.Access.Grant(b.Ctx, email, role, access.Actor{Who: "test", From: "test"}); err != nil {
		t.Fatal(err)
	}
}

// Trigger starts a manual run at the clock's now, then moves the clock on a second.
func (b *Bundle) Trigger(t testing.TB, dagID string) *scheduler.Run {
	t.Helper()
	r, err := b.Engine.Trigger(b.Ctx, dagID, nil, b.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.Clock.Add(time.Second)
	return r
}

// Drive executes queued tasks of a run until none is queued, as workers would.
func (b *Bundle) Drive(t testing.TB, r *scheduler.Run) {
	t.Helper()
	for range 100 {
		tis, err := b.Store.ListTaskInstances(b.Ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		progressed := false
		for _, ti := range tis {
			if ti.Rec.State != scheduler.TaskQueued {
				continue
			}
			ref := scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: ti.Rec.TaskID, TryNumber: ti.Rec.TryNumber, AttemptID: ti.Rec.AttemptID}
			if err := b.Worker.Execute(b.Ctx, ref); err != nil {
				t.Fatalf("execute %s: %v", ti.Rec.TaskID, err)
			}
			progressed = true
		}
		if !progressed {
			return
		}
	}
	t.Fatal("tasks kept being queued")
}
