package local_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/scheduler"
)

// TestPooledAttemptIsGoneOnceItsWorkerReportsIt: a warm worker that lives on after an
// attempt ended without its outcome recorded (the store did not answer) must not keep that
// attempt alive for the lost-worker check, or its task stays running for ever; an attempt it
// still runs is alive. The worker here is a stand-in for `updraft worker` that reports an
// attempt done at once when its id says "quick" and never otherwise.
func TestPooledAttemptIsGoneOnceItsWorkerReportsIt(t *testing.T) {
	t.Parallel()
	script := `while read verb arg; do
  id=$(printf '%s' "$arg" | base64 -d | sed -n 's/.*"attempt_id":"\([^"]*\)".*/\1/p')
  case "$id" in *quick*) echo "done $id" >&3 ;; esac
done`
	pool := &local.Pool{Cmd: []string{"/bin/sh", "-c", script}, Size: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Cleanup(func() { pool.Stop(time.Second) })
	submit := func(id string) {
		msg := scheduler.TaskMessage{AttemptRef: scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "t", TryNumber: 1, AttemptID: id}}
		if err := pool.Submit(msg, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	submit("slow1")
	busy := pool.Busy()
	if len(busy) != 1 {
		t.Fatalf("busy warm workers %v; want one", busy)
	}
	worker := local.ProcessRef(busy[0])
	submit("quick1")
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, running := pool.Running(worker, "quick1"); !running {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the warm worker never reported quick1 done")
		}
	}
	x := local.Processes{Pool: pool}
	for id, want := range map[string]bool{"quick1": false, "slow1": true} {
		alive, err := x.Alive(context.Background(), local.PooledRef(worker, id))
		if err != nil || alive != want {
			t.Errorf("Alive(%s) = %v, %v; want %v (its worker runs on)", id, alive, err, want)
		}
	}
	// Without the pool (another process asks), the worker's process is all there is to go by.
	if alive, _ := (local.Processes{}).Alive(context.Background(), local.PooledRef(worker, "quick1")); !alive {
		t.Error("Alive without the pool: false; want true while the worker process runs")
	}
}
