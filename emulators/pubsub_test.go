package emulators_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/emulators/emutest"
)

func newPubSub(t *testing.T) (context.Context, *pubsub.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	c, err := pubsub.NewClient(ctx, emutest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

func TestPubSubPublishReceive(t *testing.T) {
	t.Parallel()
	ctx, c := newPubSub(t)
	if got := publishReceive(ctx, t, c, "run dag-1"); got != "run dag-1" {
		t.Errorf("received %q", got)
	}
}

// Topics live in their project: the same topic id in two projects are two
// topics; creating one twice is AlreadyExists.
func TestPubSubTopicsPerProject(t *testing.T) {
	t.Parallel()
	ctx, a := newPubSub(t)
	_, b := newPubSub(t)
	for _, c := range []*pubsub.Client{a, b} {
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + c.Project() + "/topics/tasks"}); err != nil {
			t.Fatalf("CreateTopic in %s: %v", c.Project(), err)
		}
	}
	_, err := a.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + a.Project() + "/topics/tasks"})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("second CreateTopic: %v, want AlreadyExists", err)
	}
}
