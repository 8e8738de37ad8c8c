package psqueue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/psqueue"
)

// TestCheckSaysTheTopicIsMissingAndReceiveSurvivesALostSubscription: on a project without
// Updraft's topics Check says so; once Ensure made them it is well. A subscription deleted
// under a running Receive (as an emulator restart does) is read again once it is recreated,
// with the failure reported, and without Receive returning.
func TestCheckSaysTheTopicIsMissingAndReceiveSurvivesALostSubscription(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	project := emutest.Project(t)
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Check(ctx, 2*time.Second); !errors.Is(err, psqueue.ErrTopicMissing) || !strings.Contains(err.Error(), "Pub/Sub emulator at ") {
		t.Fatalf("Check before Ensure: %v; want ErrTopicMissing naming the emulator", err)
	}
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Check(ctx, 2*time.Second); err != nil {
		t.Fatalf("Check after Ensure: %v", err)
	}

	var mu sync.Mutex
	var failures int
	got := make(chan string, 16)
	q.OnReceiveError = func(sub string, err error) { mu.Lock(); failures++; mu.Unlock() }
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- q.Receive(rctx, psqueue.SubAdvance, 4, func(_ context.Context, data []byte) error { got <- string(data); return nil })
	}()
	if err := q.PublishEvent(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m != "before" {
		t.Fatalf("received %q", m)
	}

	admin, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{
		Subscription: "projects/" + project + "/subscriptions/" + psqueue.SubAdvance}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := failures
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Receive reported no failure after its subscription was deleted")
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.PublishEvent(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "after" {
			t.Fatalf("received %q; want after", m)
		}
	case err := <-done:
		t.Fatalf("Receive returned (%v) instead of subscribing again", err)
	case <-ctx.Done():
		t.Fatal("nothing received from the recreated subscription")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Receive after its context ended: %v", err)
	}
}
