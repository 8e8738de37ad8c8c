package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// flakyPublisher wraps the real queue and fails task publishes while failing is set: a
// publish that fails after its write.
type flakyPublisher struct {
	*psqueue.Queue
	failing atomic.Bool
}

func (p *flakyPublisher) PublishTask(ctx context.Context, data []byte) error {
	if p.failing.Load() {
		return fmt.Errorf("injected: Pub/Sub unavailable")
	}
	return p.Queue.PublishTask(ctx, data)
}

func TestPublishFailingAfterItsWriteIsRepublishedByTheTick(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{RepublishAfter: 30 * time.Second})
	pub := &flakyPublisher{Queue: b.queue}
	pub.failing.Store(true)
	eng := engine.New(b.store, pub, engine.Config{RepublishAfter: 30 * time.Second}, b.clock.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.deploy(t, chain)
	r, err := eng.Trigger(b.ctx, "chain", nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if eng.Stats.PublishFailures.Load() != 1 {
		t.Fatal("the injected publish failure did not happen")
	}
	ref := b.ref(t, r, "a") // the write happened: queued, with an attempt id
	pub.failing.Store(false)
	b.clock.Add(31 * time.Second)
	rep, err := eng.Tick(b.ctx)
	if err != nil || rep.Republished != 1 {
		t.Fatalf("tick republished %d (%v)", rep.Republished, err)
	}
	got := receiveOne(t, b)
	if got.AttemptID != ref.AttemptID {
		t.Fatalf("received attempt %s; want %s", got.AttemptID, ref.AttemptID)
	}
}

func receiveOne(t *testing.T, b *bundle) scheduler.TaskMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	var msg scheduler.TaskMessage
	_ = b.queue.Receive(ctx, psqueue.SubDispatch, 1, func(_ context.Context, data []byte) error {
		m, err := scheduler.DecodeTaskMessage(data)
		if err == nil {
			msg = m
			cancel()
		}
		return err
	})
	if msg.AttemptID == "" {
		t.Fatal("no task message arrived")
	}
	return msg
}

func TestWideFanOutHasNoHotDocument(t *testing.T) {
	t.Parallel()
	const n = 500
	b := setup(t, engine.Config{Lease: time.Hour})
	var sb strings.Builder
	sb.WriteString("id: wide\nowner: owner@example.com\nmax_active_tasks: 500\ntasks:\n  - {id: start, type: count}\n")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%03d", i)
		fmt.Fprintf(&sb, "  - {id: %s, type: count, needs: [start]}\n", ids[i])
	}
	sb.WriteString("  - {id: join, type: count, needs: [" + strings.Join(ids, ", ") + "]}\n")
	var executed atomic.Int64
	b.worker.Registry.Add(taskrun.Type{Name: "count", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		executed.Add(1)
		return engine.Result{State: scheduler.AttemptSuccess}
	}})
	b.deploy(t, sb.String())
	b.store.TrackWrites()
	r := b.trigger(t, "wide")
	b.execute(t, r, "start")
	// All 500 middle tasks at once, as 500 workers would.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, id := range ids {
		ref := b.ref(t, r, id)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := b.worker.Execute(b.ctx, ref); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b.execute(t, r, "join")
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s", s)
	}
	if got := executed.Load(); got != n+2 {
		t.Fatalf("executed %d; want %d", got, n+2)
	}
	conflicts, aborted := b.store.Contention()
	maxDoc, maxWrites := "", 0
	for doc, w := range b.store.WritesPerDoc() {
		if strings.HasPrefix(doc, "attempts/") {
			continue // an attempt's own lease renewals are allowed
		}
		if w > maxWrites {
			maxDoc, maxWrites = doc, w
		}
	}
	t.Logf("1 → %d → 1: %d lost races re-decided, %d aborted commits, at most %d writes to one document (%s)", n, conflicts, aborted, maxWrites, maxDoc)
	if aborted != 0 {
		t.Fatalf("%d commits aborted for contention; want 0", aborted)
	}
	if maxWrites > 10 {
		t.Fatalf("%s was written %d times; no document but an attempt's lease may be written more than 10 times", maxDoc, maxWrites)
	}
}

// A task message's timeout is the task's rounded up to a whole second: a sub-second or
// 9m0.5s timeout is neither "no timeout" (0) nor within the runner's 9 minutes (540 s),
// which Dispatch's routing would read it as if it were truncated.
func TestTaskMessageTimeoutRoundsUp(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		timeout string
		want    int
	}{{"500ms", 1}, {"9m0.5s", 541}, {"9m", 540}} {
		b := setup(t, engine.Config{})
		b.deploy(t, fmt.Sprintf("id: short\nowner: owner@example.com\ntasks:\n  - {id: a, type: shell, timeout: %s, with: {command: 'true'}}\n", c.timeout))
		b.trigger(t, "short")
		if got := receiveOne(t, b); got.TimeoutSeconds != c.want {
			t.Errorf("timeout %s: timeout_seconds %d; want %d", c.timeout, got.TimeoutSeconds, c.want)
		}
	}
}
