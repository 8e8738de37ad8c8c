package slackpost

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/taskrun/taskruntest"

	"github.com/updraft-dev/updraft/internal/taskrun"

	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// slackToken builds a bot token at run time: no token-shaped literal lives in the repository.
func slackToken() string { return "xox" + "b-" + "4242-7777-" + "tasksecretvalue" }

type slackBundle struct {
	fake *slackfake.Server
	log  *bytes.Buffer
}

func slackSetup(t *testing.T) slackBundle {
	t.Helper()
	fake, err := slackfake.Start([]slackfake.User{{ID: "U01ALICE00", Name: "alice", Email: "alice@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	return slackBundle{fake: fake, log: &bytes.Buffer{}}
}

// run runs slack.post with args, the token in connection "slack" and the fake as the API.
func (b slackBundle) run(t *testing.T, args map[string]any) engine.Result {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "usage", RunID: "r1", TaskID: "post", TryNumber: 1, AttemptID: "a1"}
	log, err := tasks.NewLogger(b.log, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvSlackAPIURL: b.fake.URL}
	tc := &taskrun.Context{Ref: ref, Args: args, Log: log,
		Secrets: taskruntest.Conns{"slack": {ID: "slack", Password: slackToken()}, "other": {ID: "other", Password: "xox" + "p-" + "notabot"}},
		Getenv:  func(k string) string { return env[k] }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := SlackPost().Run(ctx, tc)
	if strings.Contains(b.log.String(), slackToken()) || strings.Contains(res.Error, slackToken()) || strings.Contains(string(res.XCom), slackToken()) {
		t.Fatalf("the token leaked: log %s error %s", b.log, res.Error)
	}
	return res
}

func slackXCom(t *testing.T, res engine.Result) (channel, ts string) {
	t.Helper()
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("slack.post: %s %s", res.State, res.Error)
	}
	var x struct{ Channel, TS string }
	if err := json.Unmarshal(res.XCom, &x); err != nil || x.Channel == "" || x.TS == "" {
		t.Fatalf("XCom %s: %v", res.XCom, err)
	}
	return x.Channel, x.TS
}

func TestSlackPostText(t *testing.T) {
	t.Parallel()
	b := slackSetup(t)
	text := "<@U01ALICE00> & co: *usage* for 2025-01-01 <https://example.com|report>"
	ch, ts := slackXCom(t, b.run(t, map[string]any{"channel": "#data-alerts", "text": text}))
	msgs := b.fake.Messages()
	if len(msgs) != 1 || msgs[0].Channel != ch || msgs[0].TS != ts || msgs[0].ChannelName != "data-alerts" {
		t.Fatalf("messages %+v; XCom channel %s ts %s", msgs, ch, ts)
	}
	if msgs[0].Text != text {
		t.Errorf("text %q, want it unescaped: %q", msgs[0].Text, text)
	}
	if c := b.fake.Calls(); len(c) != 1 || c[0].Method != "chat.postMessage" || c[0].Token != "xoxb-…alue" {
		t.Errorf("calls: %+v", c)
	}
}

func TestSlackPostBlocksAttachmentsThread(t *testing.T) {
	t.Parallel()
	b := slackSetup(t)
	// A field slack-go doesn't model survives: blocks go to Slack as written.
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": "Usage"}},
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*alice*: 3.2 GiB"}, "future_field": "kept"},
		`{"type": "divider"}`,
	}
	ch, parent := slackXCom(t, b.run(t, map[string]any{"channel": "#data-alerts", "text": "fallback", "blocks": blocks,
		"attachments": `[{"color": "danger", "text": "1 task failed"}]`}))
	_, reply := slackXCom(t, b.run(t, map[string]any{"channel": ch, "thread_ts": parent,
		"blocks": `{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "details"}}]}`}))

	msgs := b.fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("messages: %+v", msgs)
	}
	got, _ := json.Marshal(msgs[0].Blocks)
	for _, want := range []string{`"future_field":"kept"`, `"type":"header"`, `"type":"divider"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("blocks %s lack %s", got, want)
		}
	}
	if atts, _ := json.Marshal(msgs[0].Attachments); !strings.Contains(string(atts), `"color":"danger"`) {
		t.Errorf("attachments: %s", atts)
	}
	if msgs[1].TS != reply || msgs[1].ThreadTS != parent || msgs[1].Text != "" {
		t.Errorf("reply: %+v, want thread %s", msgs[1], parent)
	}
}

func TestSlackPostFailures(t *testing.T) {
	t.Parallel()
	b := slackSetup(t)
	post := map[string]any{"channel": "#data-alerts", "text": "hi"}
	cases := []struct {
		name   string
		inject func()
		args   map[string]any
		final  bool
		want   string
	}{
		{"rate limited", func() { b.fake.FailNext("chat.postMessage", http.StatusTooManyRequests, 30*time.Second) }, post,
			false, "slack: rate limited, retry after 30s"},
		{"channel not found", func() { b.fake.FailNextError("chat.postMessage", "channel_not_found") }, post,
			true, "slack: channel_not_found"},
		{"unknown error code", func() { b.fake.FailNextError("chat.postMessage", "internal_error") }, post,
			false, "slack: internal_error"},
		{"down", func() { b.fake.SetDown(true) }, post, false, "slack: HTTP 503"},
		{"not a bot token", func() { b.fake.SetDown(false) }, map[string]any{"channel": "#a", "text": "x", "connection": "other"},
			true, `slack: invalid_auth (posting to #a): the bot token of connection "other" is not valid`},
		{"missing connection", nil, map[string]any{"channel": "#a", "text": "x", "connection": "nope"},
			true, `connection "nope"`},
		{"empty after rendering", nil, map[string]any{"channel": "#a", "text": " "}, true, "nothing to post"},
		{"blocks not a list", nil, map[string]any{"channel": "#a", "blocks": `{"type": "divider"}`}, true, "blocks must be a list"},
	}
	for _, c := range cases { // in order: the faults are the fake's state
		if c.inject != nil {
			c.inject()
		}
		res := b.run(t, c.args)
		if res.State != scheduler.AttemptFailed || res.Final != c.final || !strings.Contains(res.Error, c.want) {
			t.Errorf("%s: %s final=%v %q; want failed final=%v containing %q", c.name, res.State, res.Final, res.Error, c.final, c.want)
		}
	}
	if n := len(b.fake.Messages()); n != 0 {
		t.Errorf("%d messages posted by failed attempts", n)
	}
	// After the faults, a post goes through.
	slackXCom(t, b.run(t, post))
}

func TestSlackPostCheck(t *testing.T) {
	cases := []struct {
		with map[string]any
		args []string
	}{
		{map[string]any{}, []string{"channel", "text"}},
		{map[string]any{"channel": "#a"}, []string{"text"}},
		{map[string]any{"channel": "#a", "text": 3}, []string{"text"}},
		{map[string]any{"channel": "#a", "text": "x", "thread_ts": 1700000000.0001}, []string{"thread_ts"}},
		{map[string]any{"channel": "#a", "blocks": "not json"}, []string{"blocks"}},
		{map[string]any{"channel": "#a", "blocks": []any{map[string]any{"text": "no type"}}}, []string{"blocks"}},
		{map[string]any{"channel": "#a", "blocks": []any{"plain words"}}, []string{"blocks"}},
		{map[string]any{"channel": "#a", "attachments": []any{"x"}}, []string{"attachments"}},
		{map[string]any{"channel": "#a", "text": "x", "username": "bot"}, []string{"username"}},
		{map[string]any{"channel": "#a", "text": "x", "connection": 5}, []string{"connection"}},
	}
	for _, c := range cases {
		ps := checkSlackPost(c.with)
		var got []string
		for _, p := range ps {
			got = append(got, p.Arg)
		}
		if strings.Join(got, ",") != strings.Join(c.args, ",") {
			t.Errorf("%v: problems on %v (%+v), want on %v", c.with, got, ps, c.args)
		}
	}
	for _, ok := range []map[string]any{
		{"channel": `{{ var "slack-channel" "#test" }}`, "text": "{{ .ds }}"},
		{"channel": "#a", "blocks": `{{ toJSON (xcom "build").blocks }}`},
		{"channel": "#a", "blocks": []any{`{{ toJSON (xcom "build").block }}`, map[string]any{"type": "divider"}}},
		{"channel": "#a", "blocks": `{"blocks": [{"type": "divider"}]}`},
		{"channel": "#a", "attachments": `[{"color": "good"}]`, "thread_ts": `{{ (xcom "announce").ts }}`, "connection": "slack_ops"},
	} {
		if ps := checkSlackPost(ok); len(ps) != 0 {
			t.Errorf("%v: unexpected problems %+v", ok, ps)
		}
	}
}

// TestSlackPostRefusesUpdraftsActionIDs: a DAG's message may not carry a Retry button (or any
// id) of Updraft's own alerts, as blocks or inside attachments, as YAML or as rendered JSON.
// Nothing reaches Slack; the check at validate time says the same.
func TestSlackPostRefusesUpdraftsActionIDs(t *testing.T) {
	b := slackSetup(t)
	retry := map[string]any{"type": "actions", "elements": []any{map[string]any{
		"type": "button", "action_id": "updraft_retry", "text": map[string]any{"type": "plain_text", "text": "Retry"},
		"value": `{"dag_id":"payroll","run_id":"scheduled__2025-01-01T00:00:00Z","task_id":"pay"}`}}}
	for name, args := range map[string]map[string]any{
		"blocks":             {"channel": "#ops", "blocks": []any{retry}},
		"blocks as JSON":     {"channel": "#ops", "blocks": `[{"type":"actions","elements":[{"type":"button","action_id":"updraft_retry","text":{"type":"plain_text","text":"Retry"},"value":"{}"}]}]`},
		"block_id":           {"channel": "#ops", "blocks": []any{map[string]any{"type": "section", "block_id": "updraft_actions", "text": map[string]any{"type": "mrkdwn", "text": "x"}}}},
		"inside attachments": {"channel": "#ops", "attachments": []any{map[string]any{"color": "danger", "blocks": []any{retry}}}},
	} {
		before := len(b.fake.Messages())
		res := b.run(t, args)
		if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "Updraft's own") {
			t.Errorf("%s: %s final=%v %q; want a final refusal naming Updraft's ids", name, res.State, res.Final, res.Error)
		}
		if n := len(b.fake.Messages()) - before; n != 0 {
			t.Errorf("%s: %d messages reached Slack", name, n)
		}
		if ps := checkSlackPost(args); len(ps) == 0 {
			t.Errorf("%s: validation accepts it", name)
		}
	}
	// Ids of the DAG's own are fine.
	own := map[string]any{"type": "actions", "elements": []any{map[string]any{
		"type": "button", "action_id": "approve_payroll", "text": map[string]any{"type": "plain_text", "text": "Approve"}}}}
	if res := b.run(t, map[string]any{"channel": "#ops", "blocks": []any{own}}); res.State != scheduler.AttemptSuccess {
		t.Fatalf("a button of the DAG's own: %s %q", res.State, res.Error)
	}
}
