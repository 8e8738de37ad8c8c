// The pubsub.publish task type against the Pub/Sub emulator (TestMain starts it).
package pspublish_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/psqueue/pspublish"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

func TestMain(m *testing.M) { emutest.Main(m) }

type bundle struct {
	ctx     context.Context
	client  *pubsub.Client
	project string
	sub     string // a subscription on topic "orders-ready"
	// queue is the process's queue, whose client the type publishes with (nil: its own).
	queue *psqueue.Queue
}

// setup makes a project of the test's own with a topic "orders-ready" and a subscription on it.
func setup(t *testing.T) bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	project := emutest.Project(t)
	client, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	topic, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + project + "/topics/orders-ready"})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	sub, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/check", Topic: topic.GetName(), AckDeadlineSeconds: 10,
		EnableMessageOrdering: true,
	})
	if err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return bundle{ctx: ctx, client: client, project: project, sub: sub.GetName(), queue: q}
}

// run runs pubsub.publish with args; env is what the task sees as its environment.
func (b bundle) run(t *testing.T, args map[string]any, env map[string]string) engine.Result {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "orders", RunID: "r1", TaskID: "announce", TryNumber: 1, AttemptID: "a1"}
	log, err := tasks.NewLogger(io.Discard, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	tc := &taskrun.Context{Ref: ref, Args: args, Log: log, Getenv: func(k string) string { return env[k] }}
	return pspublish.PubSubPublish(b.queue).Run(b.ctx, tc)
}

// receive waits for n messages on the bundle's subscription.
func (b bundle) receive(t *testing.T, n int) map[string]*pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	got := map[string]*pubsub.Message{}
	err := b.client.Subscriber(b.sub).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		got[m.ID] = m
		if len(got) == n {
			cancel()
		}
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(got) != n {
		t.Fatalf("received %d messages within 30s, want %d", len(got), n)
	}
	return got
}

func messageIDs(t *testing.T, res engine.Result) []string {
	t.Helper()
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("pubsub.publish: %s %s", res.State, res.Error)
	}
	var x struct {
		MessageIDs []string `json:"message_ids"`
	}
	if err := json.Unmarshal(res.XCom, &x); err != nil {
		t.Fatalf("XCom %s: %v", res.XCom, err)
	}
	return x.MessageIDs
}

func TestPubSubPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, map[string]any{
		"topic": "orders-ready",
		"messages": []any{
			"plain text",
			map[string]any{"data": map[string]any{"date": "2025-01-01", "rows": 12}, "attributes": map[string]any{"source": "updraft", "try": 1}},
			map[string]any{"data": "keyed", "ordering_key": "orders"},
			map[string]any{"attributes": map[string]any{"only": "attributes"}},
		},
	}, map[string]string{"GOOGLE_CLOUD_PROJECT": b.project})
	ids := messageIDs(t, res)
	if len(ids) != 4 {
		t.Fatalf("XCom message_ids %v, want 4", ids)
	}
	got := b.receive(t, 4)
	want := []struct {
		data, attrs, key string
	}{
		{"plain text", `null`, ""},
		{`{"date":"2025-01-01","rows":12}`, `{"source":"updraft","try":"1"}`, ""},
		{"keyed", `null`, "orders"},
		{"", `{"only":"attributes"}`, ""},
	}
	for i, w := range want {
		m, ok := got[ids[i]]
		if !ok {
			t.Errorf("message_ids[%d] = %s was not received (got %v)", i, ids[i], got)
			continue
		}
		attrs, _ := json.Marshal(m.Attributes)
		if len(m.Attributes) == 0 {
			attrs = []byte("null")
		}
		if string(m.Data) != w.data || string(attrs) != w.attrs || m.OrderingKey != w.key {
			t.Errorf("message %d: data %q attributes %s key %q; want %q %s %q", i, m.Data, attrs, m.OrderingKey, w.data, w.attrs, w.key)
		}
	}
}

// A full topic name names its project: GOOGLE_CLOUD_PROJECT is not used. Messages may also
// come as JSON text, as a template over an XCom renders them.
func TestPubSubPublishTopicNameAndJSONMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, map[string]any{
		"topic":    "projects/" + b.project + "/topics/orders-ready",
		"messages": `["a", {"data": "b", "attributes": {"k": "v"}}]`,
	}, map[string]string{"GOOGLE_CLOUD_PROJECT": "some-other-project"})
	ids := messageIDs(t, res)
	got := b.receive(t, 2)
	if len(ids) != 2 || string(got[ids[0]].Data) != "a" || got[ids[1]].Attributes["k"] != "v" {
		t.Errorf("ids %v, received %v", ids, got)
	}
}

func TestPubSubPublishMissingTopic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, map[string]any{"topic": "no-such-topic", "project": b.project, "messages": []any{"x"}}, nil)
	want := "projects/" + b.project + "/topics/no-such-topic not found"
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, want) {
		t.Errorf("publish to a missing topic: %s final=%v %q; want a final failure containing %q", res.State, res.Final, res.Error, want)
	}
}

func TestPubSubPublishNoProject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res := b.run(t, map[string]any{"topic": "orders-ready", "messages": []any{"x"}}, nil)
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "GOOGLE_CLOUD_PROJECT") {
		t.Errorf("no project: %s final=%v %q", res.State, res.Final, res.Error)
	}
}

// TestPubSubPublishWithoutAQueue: a registry without the process's queue (nil) still
// publishes, with a client of the attempt's own.
func TestPubSubPublishWithoutAQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.queue = nil
	ids := messageIDs(t, b.run(t, map[string]any{"topic": "orders-ready", "messages": []any{"own client"}},
		map[string]string{"GOOGLE_CLOUD_PROJECT": b.project}))
	got := b.receive(t, 1)
	if len(ids) != 1 || got[ids[0]] == nil || string(got[ids[0]].Data) != "own client" {
		t.Errorf("message_ids %v, received %v", ids, got)
	}
}
