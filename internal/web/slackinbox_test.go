package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/web"
)

// TestSlackInboxNamesEachMessagesZone: the inbox page shows a message about a DAG at its time
// in the DAG's timezone, the zone named, and a message about no DAG (or several) in UTC.
func TestSlackInboxNamesEachMessagesZone(t *testing.T) {
	u := startUI(t)
	post := func(text string, blocks any) {
		t.Helper()
		msg := map[string]any{"channel": "#inbox-zones", "text": text}
		if blocks != nil { // as alerts post them: in an attachment
			msg["attachments"] = []any{map[string]any{"color": "#d33", "blocks": blocks}}
		}
		body, _ := json.Marshal(msg)
		req, _ := http.NewRequest(http.MethodPost, testStandIns.Slack.URL+"/api/chat.postMessage", bytes.NewReader(body))
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
	// A run alert as alerts builds it (ok_dag is in Asia/Seoul), and a message with no run link.
	now := time.Now()
	ev := alerts.EventMessage(alerts.Alert{Kind: alerts.KindFailure, DagID: "ok_dag", RunID: "manual__x", TaskID: "extract",
		TryNumber: 1, MaxTries: 1, LogicalDate: now, UIURL: u.url, Owner: "owner@example.com"})
	post("zone-test-seoul "+ev.Text, ev.Blocks)
	post("zone-test-none: nothing to link", nil)
	post("zone-test-digest", alerts.DigestMessage([]alerts.DigestItem{{DagID: "ok_dag", RunID: "r", TaskID: "t"}, {DagID: "flaky_dag", RunID: "r", TaskID: "t"}},
		now, now, u.url, 0).Blocks)

	req, _ := http.NewRequest(http.MethodGet, u.url+"/slack", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /slack: %s\n%s", resp.Status, page)
	}
	article := func(marker string) string {
		for _, a := range strings.Split(string(page), "<article") {
			if strings.Contains(a, marker) {
				return a
			}
		}
		t.Fatalf("no message %q on the inbox page:\n%s", marker, page)
		return ""
	}
	if a := article("zone-test-seoul"); !strings.Contains(a, "(Asia/Seoul)") || !strings.Contains(a, " KST<") {
		t.Errorf("a message about ok_dag should be in Asia/Seoul, the zone named:\n%s", a)
	}
	if a := article("zone-test-none"); !strings.Contains(a, "(UTC)") || !strings.Contains(a, " UTC<") {
		t.Errorf("a message about no DAG should be in UTC, named:\n%s", a)
	}
	if a := article("zone-test-digest"); !strings.Contains(a, "(UTC)") {
		t.Errorf("a digest of two DAGs should be in UTC, named:\n%s", a)
	}
}

func TestMessageDAG(t *testing.T) {
	ev := alerts.EventMessage(alerts.Alert{Kind: alerts.KindFailure, DagID: "a b/c", RunID: "r1", TaskID: "t", UIURL: "http://ui"})
	if got := web.MessageDAG(web.SlackMessage{Text: ev.Text, Attachments: []any{map[string]any{"blocks": ev.Blocks}}}); got != "a b/c" {
		t.Errorf("MessageDAG of an alert of DAG %q = %q", "a b/c", got)
	}
	digest := alerts.DigestMessage([]alerts.DigestItem{{DagID: "one", RunID: "r", TaskID: "t"}, {DagID: "two", RunID: "r", TaskID: "t"}},
		time.Now(), time.Now(), "http://ui", 0)
	if got := web.MessageDAG(web.SlackMessage{Text: digest.Text, Blocks: digest.Blocks}); got != "" {
		t.Errorf("a digest of two DAGs is about none, got %q", got)
	}
	if got := web.MessageDAG(web.SlackMessage{Text: "hello"}); got != "" {
		t.Errorf("a message without a run link is about no DAG, got %q", got)
	}
}
