package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
)

// TestSlackInboxNamesEachMessagesZone: `updraft slack inbox` prints a message about a DAG at
// its time in the DAG's timezone, the zone named, and any other message in UTC, named.
func TestSlackInboxNamesEachMessagesZone(t *testing.T) {
	fake := httptest.NewServer(slackfake.New(nil).Handler())
	t.Cleanup(fake.Close)
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		slackpost.EnvSlackAPIURL:  fake.URL,
	}
	asFirstAdmin(t, env)
	if out, errOut, code := run(t, env, "dags", "deploy", "testdata/seoul_daily.yaml"); code != 0 {
		t.Fatalf("deploy: %d\n%s%s", code, out, errOut)
	}
	post := func(text string, blocks any) {
		t.Helper()
		msg := map[string]any{"channel": "#inbox-zones", "text": text}
		if blocks != nil { // as alerts post them: in an attachment
			msg["attachments"] = []any{map[string]any{"blocks": blocks}}
		}
		body, _ := json.Marshal(msg)
		req, _ := http.NewRequest(http.MethodPost, fake.URL+"/api/chat.postMessage", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer xoxb-test-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"ok":true`) {
			t.Fatalf("the fake Slack refused the post: %s", b)
		}
	}
	ev := alerts.EventMessage(alerts.Alert{Kind: alerts.KindFailure, DagID: "seoul_daily", RunID: "manual__x", TaskID: "report",
		TryNumber: 1, MaxTries: 1, LogicalDate: time.Now(), UIURL: "http://ui", Owner: "owner@example.com"})
	post("zone-test-seoul", ev.Blocks)
	post("zone-test-none", nil)

	out, errOut, code := run(t, env, "slack", "inbox")
	if code != 0 {
		t.Fatalf("slack inbox: %d\n%s%s", code, out, errOut)
	}
	parts := strings.Split(out, "── ")
	if len(parts) != 3 {
		t.Fatalf("want 2 messages:\n%s", out)
	}
	if m := parts[1]; !strings.Contains(m, "KST (Asia/Seoul) #inbox-zones") || !strings.Contains(m, "zone-test-seoul") {
		t.Errorf("a message about seoul_daily should be in its zone, named, with its channel:\n%s", m)
	}
	if m := parts[2]; !strings.Contains(m, "UTC (UTC) #inbox-zones") || !strings.Contains(m, "zone-test-none") {
		t.Errorf("a message about no DAG should be in UTC, named:\n%s", m)
	}
}
