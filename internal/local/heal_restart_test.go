package local_test

// A Firestore emulator restored from a snapshot gives every document a new update time, so a
// worker's next conditional write fails once; the worker re-reads its attempt (engine/
// attempt.go), finds it still its own and running, and writes again.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/scheduler"
)

// TestWorkerOutlivesAFirestoreRestart kills Firestore while a task runs, after its claim was
// saved: the Keeper restarts it from the snapshot, the worker records its result there, and
// the task ran once.
func TestWorkerOutlivesAFirestoreRestart(t *testing.T) {
	b := startFaultStack(t, t.TempDir())
	marks := filepath.Join(t.TempDir(), "marks")
	started := marks + ".started"
	src := `id: orphan
owner: owner@example.com
tasks:
  - id: long
    type: shell
    with: {command: 'touch ` + started + `; while [ ! -e ` + marks + `.go ]; do sleep 0.1; done; echo long >> ` + marks + `'}
`
	b.deploy(t, src)
	r, err := b.stack.Engine.Trigger(b.ctx, "orphan", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	until(t, "the task to run", func() bool { _, err := os.Stat(started); return err == nil })
	until(t, "the task to be recorded running", func() bool {
		ti, err := b.stack.Store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "long")
		return err == nil && ti.Rec.State == scheduler.TaskRunning
	})
	keeper := &emulators.Keeper{Set: b.set, Project: b.project, SaveEvery: time.Hour, Log: slog.New(slog.NewTextHandler(b.log, nil))}
	if err := keeper.Save(b.ctx); err != nil {
		t.Fatal(err)
	}
	kctx, stopKeeper := context.WithCancel(b.ctx)
	defer stopKeeper()
	go keeper.Run(kctx)
	kill(t, b.set.Firestore)
	until(t, "the keeper to restart Firestore", func() bool { return keeper.Restarts() == 1 })
	if err := os.WriteFile(marks+".go", nil, 0o644); err != nil { // the task may finish now
		t.Fatal(err)
	}
	if got := b.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success, recorded by the worker that outlived the restart", got)
	}
	if n := linesByWord(t, marks)["long"]; n != 1 {
		t.Fatalf("the task ran %d times; want once", n)
	}
}
