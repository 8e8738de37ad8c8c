package cli

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/scheduler"
)

// startAdvancer runs the advancer on a project until the test ends, as `updraft dev` does:
// `updraft trigger` only creates the run, and the advancer starts it from its start event.
// It returns a function that waits (a bounded poll) until a run ("DAG/RUN_ID") is past
// queued.
func startAdvancer(t *testing.T, project string) func(ref string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(st, q, engine.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { defer close(done); _ = q.Receive(ctx, psqueue.SubAdvance, 16, eng.HandleEvent) }()
	t.Cleanup(func() { cancel(); <-done; q.Close(); st.Close() })
	return func(ref string) {
		t.Helper()
		dagID, runID, _ := scheduler.SplitRunRef(ref)
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, err := st.GetRun(context.Background(), dagID, runID)
			if err == nil && v.Rec.State != scheduler.RunQueued {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s was not started by the advancer within 30 s (%v)", ref, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the store, not a timing assumption
		}
	}
}
