package emulators_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/emulators/emutest"
)

// The Firestore and Pub/Sub behaviour tests share the emulators started by
// emutest.Main; TestLifecycle and TestStopReportsCrash start their own.
func TestMain(m *testing.M) { emutest.Main(m) }

func TestCheck(t *testing.T) {
	if err := emulators.Check(); err != nil {
		t.Fatal(err)
	}
	root, err := emulators.SDKRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SDK root %s, Pub/Sub emulator %s", root, emulators.PubSubVersion())
	if emulators.PubSubVersion() == "" {
		t.Error("PubSubVersion is empty")
	}
}

func TestCheckSaysWhatToInstall(t *testing.T) {
	t.Setenv(emulators.SDKRootEnv, t.TempDir()) // an SDK without emulators
	t.Setenv("JAVA_HOME", "")
	t.Setenv("PATH", t.TempDir()) // no java
	err := emulators.Check()
	if err == nil {
		t.Fatal("Check succeeded without java and emulators")
	}
	t.Logf("Check error:\n%v", err)
	for _, want := range []string{
		"Firestore emulator not found under ",
		"`sudo apt-get install google-cloud-cli-firestore-emulator`",
		"`gcloud components install cloud-firestore-emulator`",
		"Pub/Sub emulator not found under ",
		"`sudo apt-get install google-cloud-cli-pubsub-emulator`",
		"`gcloud components install pubsub-emulator`",
		"java not found",
		"`sudo apt-get install openjdk-17-jre-headless`",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check error does not contain %q", want)
		}
	}
}

func TestCheckRejectsOldJava(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, "bin"), 0o755)
	fake := "#!/bin/sh\necho 'java version \"1.8.0_381\"' >&2\n"
	if err := os.WriteFile(filepath.Join(home, "bin", "java"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAVA_HOME", home)
	err := emulators.Check()
	if err == nil || !strings.Contains(err.Error(), "Firestore emulator needs Java 11 or newer") {
		t.Fatalf("Check with Java 8 = %v, want an error asking for Java 11", err)
	}
	t.Logf("Check error: %v", err)
}

func TestFromEnv(t *testing.T) {
	t.Setenv(emulators.FirestoreHostEnv, "127.0.0.1:1")
	t.Setenv(emulators.PubSubHostEnv, "")
	if _, ok := emulators.FromEnv(); ok {
		t.Fatal("FromEnv with only FIRESTORE_EMULATOR_HOST set returned ok")
	}
	t.Setenv(emulators.PubSubHostEnv, "127.0.0.1:2")
	s, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("FromEnv with both variables set returned !ok")
	}
	if got, want := strings.Join(s.Env(), " "), "FIRESTORE_EMULATOR_HOST=127.0.0.1:1 PUBSUB_EMULATOR_HOST=127.0.0.1:2"; got != want {
		t.Errorf("Env() = %q, want %q", got, want)
	}
	if s.Firestore.PID() != 0 || s.Firestore.Done() != nil {
		t.Error("emulator from the environment has a process")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop of a Set from the environment: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.WaitReady(ctx); err == nil {
		t.Error("WaitReady succeeded with nothing listening")
	}
}

// publishReceive creates a topic and a subscription, publishes one message
// and receives it.
func publishReceive(ctx context.Context, t *testing.T, c *pubsub.Client, payload string) string {
	t.Helper()
	topic, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{
		Name: "projects/" + c.Project() + "/topics/tasks",
	})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	sub, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               "projects/" + c.Project() + "/subscriptions/workers",
		Topic:              topic.GetName(),
		AckDeadlineSeconds: 10,
	})
	if err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	pub := c.Publisher(topic.GetName())
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(payload), Attributes: map[string]string{"k": "v"}}).Get(ctx)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got string
	err = c.Subscriber(sub.GetName()).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		if m.ID != id || m.Attributes["k"] != "v" {
			t.Errorf("received id %s attributes %v, want id %s attributes k=v", m.ID, m.Attributes, id)
		}
		got = string(m.Data)
		m.Ack()
		cancel()
	})
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if got == "" {
		t.Fatal("no message received within 30s")
	}
	return got
}
