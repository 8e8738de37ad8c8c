package psqueue_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"cloud.google.com/go/pubsub/v2"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/psqueue"
)

func TestMain(m *testing.M) { emutest.Main(m) }

func TestPullOnceAcksWhatItHandledAndReturnsAtOnceWhenEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	project := emutest.Project(t)
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	// ok is handled, bad can never be (acknowledged too), retry fails once.
	failed := map[string]bool{}
	h := func(ctx context.Context, data []byte) error {
		mu.Lock()
		defer mu.Unlock()
		s := string(data)
		seen = append(seen, s)
		switch {
		case s == "bad":
			return fmt.Errorf("%w: not a task", psqueue.ErrBadMessage)
		case s == "retry" && !failed[s]:
			failed[s] = true
			return errors.New("firestore unavailable")
		}
		return nil
	}
	pull := func() (int, []string) {
		t.Helper()
		mu.Lock()
		seen = nil
		mu.Unlock()
		n, err := q.PullOnce(ctx, psqueue.SubTasksDead, 10, h)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		sort.Strings(seen)
		return n, seen
	}
	if n, got := pull(); n != 0 || len(got) != 0 {
		t.Fatalf("empty subscription: %d acked, handled %v; want nothing", n, got)
	}

	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := c.Publisher(psqueue.TopicTasksDead)
	defer p.Stop()
	for _, s := range []string{"ok", "bad", "retry"} {
		if _, err := p.Publish(ctx, &pubsub.Message{Data: []byte(s)}).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, got := pull(); n != 2 || fmt.Sprint(got) != "[bad ok retry]" {
		t.Fatalf("first pull: %d acked, handled %v; want 2 acked of [bad ok retry]", n, got)
	}
	// The failed one is back at once (its ack deadline was reset); the others are gone.
	if n, got := pull(); n != 1 || fmt.Sprint(got) != "[retry]" {
		t.Fatalf("second pull: %d acked, handled %v; want the failed message again", n, got)
	}
	if n, got := pull(); n != 0 || len(got) != 0 {
		t.Fatalf("third pull: %d acked, handled %v; want nothing left", n, got)
	}
}
