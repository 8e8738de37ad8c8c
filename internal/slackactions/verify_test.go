package slackactions

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignMatchesSlacksExample(t *testing.T) {
	// The worked example of Slack's "Verifying requests from Slack" guide.
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	body := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	want := "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	if got := Sign(secret, "1531420618", body); got != want {
		t.Fatalf("Sign = %s; want %s", got, want)
	}
	if err := Verify(secret, "1531420618", want, body, time.Unix(1531420618, 0)); err != nil {
		t.Fatalf("Verify of Slack's example: %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("s3cret-signing")
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	body := []byte("payload=%7B%7D")
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	cases := []struct {
		name      string
		ts, sig   string
		body      []byte
		want      error
		wantInMsg string
	}{
		{name: "valid", ts: ts(0), sig: Sign(secret, ts(0), body), body: body},
		{name: "valid, 4m59s old", ts: ts(-299 * time.Second), sig: Sign(secret, ts(-299*time.Second), body), body: body},
		{name: "valid, 4m59s ahead", ts: ts(299 * time.Second), sig: Sign(secret, ts(299*time.Second), body), body: body},
		{name: "another secret", ts: ts(0), sig: Sign([]byte("other"), ts(0), body), body: body, want: ErrBadSignature},
		{name: "body altered", ts: ts(0), sig: Sign(secret, ts(0), body), body: []byte("payload=%7B%22x%22%7D"), want: ErrBadSignature},
		{name: "timestamp altered", ts: ts(time.Second), sig: Sign(secret, ts(0), body), body: body, want: ErrBadSignature},
		{name: "garbage signature", ts: ts(0), sig: "v0=zz", body: body, want: ErrBadSignature},
		{name: "no signature", ts: ts(0), sig: "", body: body, want: ErrNotSigned},
		{name: "no timestamp", ts: "", sig: Sign(secret, "", body), body: body, want: ErrNotSigned},
		{name: "timestamp not a number", ts: "yesterday", sig: Sign(secret, "yesterday", body), body: body, want: ErrBadSignature, wantInMsg: "not Unix seconds"},
		{name: "replayed, 5m01s old", ts: ts(-301 * time.Second), sig: Sign(secret, ts(-301*time.Second), body), body: body, want: ErrReplayed, wantInMsg: "signed 5m1s ago"},
		{name: "replayed, a day old", ts: ts(-24 * time.Hour), sig: Sign(secret, ts(-24*time.Hour), body), body: body, want: ErrReplayed},
		{name: "from the future", ts: ts(301 * time.Second), sig: Sign(secret, ts(301*time.Second), body), body: body, want: ErrFuture, wantInMsg: "5m1s ahead"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(secret, c.ts, c.sig, c.body, now)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v; want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.wantInMsg) {
				t.Fatalf("Verify = %v; want it to say %q", err, c.wantInMsg)
			}
			if strings.Contains(err.Error(), string(secret)) {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

func form(payload any) []byte {
	b, _ := json.Marshal(payload)
	return []byte("payload=" + url.QueryEscape(string(b)))
}

func TestParsePayloadAndRetry(t *testing.T) {
	click := func(actionID, value string) map[string]any {
		return map[string]any{"type": "block_actions", "user": map[string]any{"id": "U1"},
			"container": map[string]any{"type": "message", "channel_id": "C1", "message_ts": "1.2"},
			"actions":   []any{map[string]any{"action_id": actionID, "value": value}}}
	}
	p, err := ParsePayload(form(click(ActionRetry, `{"dag_id":"d","run_id":"r","task_id":"t"}`)))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := p.Retry(); err != nil || v != (RetryValue{DagID: "d", RunID: "r", TaskID: "t"}) || p.ChannelID() != "C1" {
		t.Fatalf("Retry = %+v, %v; channel %q", v, err, p.ChannelID())
	}
	for name, c := range map[string]struct {
		body []byte
		want string
	}{
		"not a form":         {[]byte("%zz"), "not a form"},
		"no payload":         {[]byte("x=1"), "no payload field"},
		"payload not JSON":   {[]byte("payload={"), "not JSON"},
		"not block_actions":  {form(map[string]any{"type": "view_submission", "user": map[string]any{"id": "U1"}}), `"view_submission" is not handled`},
		"no user":            {form(map[string]any{"type": "block_actions"}), "names no user"},
		"unknown action_id":  {form(click("something_else", "{}")), "unknown action_id something_else"},
		"value not JSON":     {form(click(ActionRetry, "retry")), "value is not JSON"},
		"value lacks a task": {form(click(ActionRetry, `{"dag_id":"d","run_id":"r"}`)), "lacks dag_id, run_id or task_id"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePayload(c.body)
			if err == nil {
				_, err = p.Retry()
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrBadRequest saying %q", err, c.want)
			}
		})
	}
}

func TestRetriedBlocksKeepTheMessageAndReplaceAnEarlierRetry(t *testing.T) {
	orig := []json.RawMessage{
		json.RawMessage(`{"type":"section","block_id":"head","text":{"type":"mrkdwn","text":"*load* failed","verbatim":false}}`),
		json.RawMessage(`{"type":"actions","block_id":"act","elements":[{"type":"button","action_id":"updraft_retry","value":"{}","text":{"type":"plain_text","text":"Retry"}}]}`),
		json.RawMessage(`{"type":"context","block_id":"updraft_retried","elements":[{"type":"mrkdwn","text":"Retried by <@U0> at earlier"}]}`),
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	blocks, err := RetriedBlocks(orig, "U1", time.Date(2025, 3, 1, 9, 30, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("%d blocks; want 3 (two kept, the old retry note replaced)", len(blocks))
	}
	for i := range 2 {
		got, _ := json.Marshal(blocks[i])
		if string(got) != string(orig[i]) {
			t.Errorf("block %d changed:\n%s\nwant\n%s", i, got, orig[i])
		}
	}
	last, _ := json.Marshal(blocks[2])
	if !strings.Contains(string(last), `Retried by \u003c@U1\u003e at 2025-03-01 09:30:00 KST`) &&
		!strings.Contains(string(last), `Retried by <@U1> at 2025-03-01 09:30:00 KST`) {
		t.Fatalf("last block %s lacks the retry note", last)
	}
}
