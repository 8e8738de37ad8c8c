package alerts_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/scheduler"
)

func blocksJSON(t *testing.T, m alerts.Message) string {
	t.Helper()
	b, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b))
}

func TestEventMessage(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 10, 0, 31, 0, 0, time.UTC)
	end := start.Add(65 * time.Second)
	a := alerts.Alert{Kind: alerts.KindFailure, DagID: "orders", RunID: "scheduled__2025-01-09T15:00:00Z", TaskID: "load",
		TryNumber: 3, MaxTries: 3, LogicalDate: time.Date(2025, 1, 9, 15, 0, 0, 0, time.UTC), Loc: seoul,
		Started: &start, Ended: &end, Error: "rows <bad> & worse\nexit status 1", Owner: "<@U0KIM00001>", UIURL: "https://ui.example.com/"}
	m := alerts.EventMessage(a)
	if m.Color != alerts.ColorFailed {
		t.Errorf("colour %s, want %s", m.Color, alerts.ColorFailed)
	}
	if !strings.Contains(m.Text, "<@U0KIM00001>") || !strings.Contains(m.Text, "orders.load (try 3 of 3)") {
		t.Errorf("text %q should name the task and try and mention the owner", m.Text)
	}
	j := blocksJSON(t, m)
	for _, want := range []string{
		"2025-01-10 00:00 KST", // the logical date in the DAG's timezone
		"1m5s", "3 of 3",
		`rows &lt;bad&gt; &amp; worse\nexit status 1`, // escaped for mrkdwn (\n: JSON's)
		`"url":"https://ui.example.com/dags/orders/runs/scheduled__2025-01-09T15:00:00Z/tasks/load?try=3"`,
		`"action_id":"updraft_retry"`,
		`"value":"{\"dag_id\":\"orders\",\"run_id\":\"scheduled__2025-01-09T15:00:00Z\",\"task_id\":\"load\"}"`,
	} {
		if !strings.Contains(j, want) {
			t.Errorf("blocks lack %q:\n%s", want, j)
		}
	}
	for kind, color := range map[alerts.Kind]string{alerts.KindRetry: alerts.ColorRetry, alerts.KindSuccess: alerts.ColorSuccess, alerts.KindSLAMiss: alerts.ColorSLA} {
		a.Kind = kind
		m := alerts.EventMessage(a)
		if m.Color != color {
			t.Errorf("%s: colour %s, want %s", kind, m.Color, color)
		}
		if strings.Contains(blocksJSON(t, m), alerts.RetryActionID) {
			t.Errorf("%s has a Retry button; only a final failure has one", kind)
		}
	}
}

func TestParentMessageFollowsTheRun(t *testing.T) {
	first := alerts.Alert{Kind: alerts.KindRetry, DagID: "d", RunID: "r", TaskID: "t", TryNumber: 1, MaxTries: 2, Error: "first error"}
	latest := alerts.Alert{Kind: alerts.KindFailure, DagID: "d", RunID: "r", TaskID: "t", TryNumber: 2, MaxTries: 2, Error: "second error"}
	for _, c := range []struct {
		state scheduler.RunState
		color string
		says  string
	}{
		{scheduler.RunRunning, alerts.ColorFailed, "run running, a task failed"},
		{scheduler.RunFailed, alerts.ColorFailed, "run failed"},
		{scheduler.RunSuccess, alerts.ColorSuccess, "run succeeded"},
	} {
		m := alerts.ParentMessage(alerts.RunInfo{DagID: "d", RunID: "r", State: c.state, Owner: "kim@example.com"}, first, latest)
		j := blocksJSON(t, m)
		if m.Color != c.color || !strings.Contains(j, c.says) {
			t.Errorf("%s: colour %s, want %s; blocks should say %q:\n%s", c.state, m.Color, c.color, c.says, j)
		}
		if !strings.Contains(j, "first error") || !strings.Contains(j, "Task failed: `t` (try 2 of 2)") {
			t.Errorf("%s: the parent should keep its first alert's error and show the latest: %s", c.state, j)
		}
	}
}

func TestErrorTail(t *testing.T) {
	var lines []string
	for i := range 30 {
		lines = append(lines, strings.Repeat("x", 5)+string(rune('a'+i%26)))
	}
	tail := alerts.ErrorTail(strings.Join(lines, "\n") + "\n")
	if got := strings.Split(tail, "\n"); len(got) != 10 || got[0] != "… "+lines[20] || got[9] != lines[29] {
		t.Errorf("tail = %q; want the last 10 lines, the first marked as cut", got)
	}
	long := alerts.ErrorTail(strings.Repeat("é", 3000) + "END")
	if len(long) > 2500+len("…") || !strings.HasSuffix(long, "END") || !strings.HasPrefix(long, "…") {
		t.Errorf("long tail: %d bytes, ends %q; want ≤ 2,500 and the end kept", len(long), long[len(long)-3:])
	}
	if strings.Contains(alerts.ErrorTail("a ``` b"), "```") {
		t.Error("``` inside an error would end the code block")
	}
}

func TestDigestMessageGroupsByOwner(t *testing.T) {
	since := time.Date(2025, 1, 10, 0, 20, 0, 0, time.UTC)
	items := []alerts.DigestItem{
		{DagID: "b_dag", RunID: "r1", TaskID: "t1", TryNumber: 1, Error: "boom\nlast line", OwnerEmail: "lee@example.com", Owner: "<@U0LEE00001>",
			Started: &since, Ended: ptr(since.Add(65 * time.Second))},
		{DagID: "a_dag", RunID: "r2", TaskID: "t2", TryNumber: 2, OwnerEmail: "kim@example.com", Owner: "<@U0KIM00001>"},
		{DagID: "c_dag", RunID: "r3", TaskID: "t3", TryNumber: 1, OwnerEmail: "lee@example.com", Owner: "<@U0LEE00001>"},
	}
	m := alerts.DigestMessage(items, since, since.Add(10*time.Minute), "http://ui", 0)
	j := blocksJSON(t, m)
	kim, lee := strings.Index(j, "<@U0KIM00001>*: 1 failed"), strings.Index(j, "<@U0LEE00001>*: 2 failed")
	if kim < 0 || lee < 0 || strings.Index(j, "b_dag") < lee || strings.Index(j, "c_dag") < lee || strings.Index(j, "a_dag") > lee {
		t.Fatalf("not grouped by owner:\n%s", j)
	}
	if !strings.Contains(j, "last line") || strings.Contains(j, "boom") {
		t.Errorf("each failure should show its error's last line:\n%s", j)
	}
	if !strings.Contains(j, "(try 1, ran 1m5s)") || strings.Count(j, ", ran ") != 1 {
		t.Errorf("the line of a failed try with a start and an end should say how long it ran (only that one):\n%s", j)
	}
	if !strings.Contains(m.Text, "3 failed tasks") || !strings.Contains(m.Text, "<@U0KIM00001>") {
		t.Errorf("text %q should count the failures and mention the owners", m.Text)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"UPDRAFT_ALERT_DIGEST_CHANNEL": " #digest ", "UPDRAFT_ALERT_DIGEST_EVERY": "15m", "UPDRAFT_UI_URL": "https://ui"}
	c, err := alerts.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.DigestChannel != "#digest" || c.DigestEvery != 15*time.Minute || c.UIURL != "https://ui" {
		t.Fatalf("config %+v, %v", c, err)
	}
	env["UPDRAFT_ALERT_DIGEST_EVERY"] = "soon"
	if _, err := alerts.ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("a bad UPDRAFT_ALERT_DIGEST_EVERY is accepted")
	}
}

func ptr[T any](v T) *T { return &v }
