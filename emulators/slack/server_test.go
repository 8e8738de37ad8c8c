package slackfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// botToken builds a bot token at run time: no token-shaped literal lives in the repository.
func botToken(secret string) string { return "xox" + "b-" + secret }

var users = []User{
	{ID: "U01ALICE00", Name: "alice", Email: "alice@example.com"},
	{ID: "U02BOB0000", Name: "bob", Email: "bob@example.com"},
}

type bundle struct {
	srv    *Server
	client *slack.Client
	token  string
}

func setup(t *testing.T) bundle {
	t.Helper()
	srv, err := Start(users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	token := botToken("1111-2222-abcdefghwxyz")
	return bundle{srv: srv, token: token, client: slack.New(token, slack.OptionAPIURL(srv.APIURL()))}
}

var tsPattern = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func TestSlackPostThreadAndUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	section := slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*daily* usage", false, false), nil, nil)
	ch, ts, err := b.client.PostMessage("#data-alerts", slack.MsgOptionText("usage for 2025-01-01", false),
		slack.MsgOptionBlocks(section), slack.MsgOptionAttachments(slack.Attachment{Color: "danger", Text: "1 failed"}))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	if !strings.HasPrefix(ch, "C") || !tsPattern.MatchString(ts) {
		t.Fatalf("PostMessage returned channel %q ts %q", ch, ts)
	}
	// The same name gives the same channel ID.
	ch2, ts2, err := b.client.PostMessage("data-alerts", slack.MsgOptionText("second", false))
	if err != nil || ch2 != ch || ts2 <= ts {
		t.Fatalf("second post: %q %q %v; want channel %q and a ts after %q", ch2, ts2, err, ch, ts)
	}
	_, reply, err := b.client.PostMessage(ch, slack.MsgOptionText("run failed: try 2", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	// A reply to a reply lands in the parent's thread, as in Slack.
	_, reply2, err := b.client.PostMessage(ch, slack.MsgOptionText("run failed: try 3", false), slack.MsgOptionTS(reply))
	if err != nil {
		t.Fatalf("reply to reply: %v", err)
	}
	// A thread_ts naming no message posts un-threaded.
	_, orphan, err := b.client.PostMessage(ch, slack.MsgOptionText("orphan", false), slack.MsgOptionTS("1.000001"))
	if err != nil {
		t.Fatalf("orphan reply: %v", err)
	}
	if _, _, _, err := b.client.UpdateMessage(ch, ts, slack.MsgOptionText("usage for 2025-01-01: failed", false)); err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}

	msgs := b.srv.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5: %+v", len(msgs), msgs)
	}
	parent := msgs[0]
	if parent.Text != "usage for 2025-01-01: failed" || parent.Updated != 1 || parent.ChannelName != "data-alerts" || parent.ThreadTS != "" {
		t.Errorf("parent after update: %+v", parent)
	}
	blocks, _ := json.Marshal(parent.Blocks)
	atts, _ := json.Marshal(parent.Attachments)
	if !strings.Contains(string(blocks), `"*daily* usage"`) || !strings.Contains(string(atts), `"danger"`) {
		t.Errorf("the update dropped blocks %s or attachments %s that it did not send", blocks, atts)
	}
	for _, m := range msgs[2:4] {
		if m.ThreadTS != ts {
			t.Errorf("reply %s has thread_ts %q, want %q", m.TS, m.ThreadTS, ts)
		}
	}
	if msgs[2].TS != reply || msgs[3].TS != reply2 || msgs[4].TS != orphan || msgs[4].ThreadTS != "" {
		t.Errorf("replies: %+v", msgs[2:])
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Errorf("ts not increasing: %s then %s", msgs[i-1].TS, msgs[i].TS)
		}
	}

	if _, _, _, err := b.client.UpdateMessage(ch, "1.000002", slack.MsgOptionText("x", false)); slackCode(err) != "message_not_found" {
		t.Errorf("update of an unknown ts: %v, want message_not_found", err)
	}
	if _, _, err := b.client.PostMessage(ch); slackCode(err) != "no_text" {
		t.Errorf("post without text: %v, want no_text", err)
	}
}

func TestSlackPostMessageWithResponseParses(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, ts, _ := b.client.PostMessage("#a", slack.MsgOptionText("parent", false))
	_, _, msg, err := b.client.PostMessageWithResponse("#a", slack.MsgOptionText("child", false), slack.MsgOptionTS(ts),
		slack.MsgOptionBlocks(slack.NewDividerBlock()))
	if err != nil {
		t.Fatal(err)
	}
	if msg.ThreadTimestamp != ts || msg.Text != "child" || msg.BotID != BotID || len(msg.Blocks.BlockSet) != 1 {
		t.Errorf("message in the response: %+v", msg.Msg)
	}
}

func TestSlackEphemeral(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts, err := b.client.PostEphemeral("#ops", "U02BOB0000", slack.MsgOptionText("only you", false))
	if err != nil || !tsPattern.MatchString(ts) {
		t.Fatalf("PostEphemeral: %q %v", ts, err)
	}
	if m := b.srv.Messages(); len(m) != 1 || m[0].EphemeralTo != "U02BOB0000" {
		t.Errorf("messages: %+v", m)
	}
	if _, err := b.client.PostEphemeral("#ops", "U09NOBODY0", slack.MsgOptionText("x", false)); slackCode(err) != "user_not_found" {
		t.Errorf("ephemeral to an unknown user: %v", err)
	}
}

func TestSlackUsers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, err := b.client.GetUserByEmail("Alice@Example.com")
	if err != nil || u.ID != "U01ALICE00" || u.Profile.Email != "alice@example.com" {
		t.Fatalf("lookupByEmail hit: %+v %v", u, err)
	}
	if _, err := b.client.GetUserByEmail("carol@example.com"); slackCode(err) != "users_not_found" {
		t.Errorf("lookupByEmail miss: %v, want users_not_found", err)
	}
	if u, err := b.client.GetUserInfo("U02BOB0000"); err != nil || u.Name != "bob" {
		t.Errorf("users.info: %+v %v", u, err)
	}
	if _, err := b.client.GetUserInfo("U09NOBODY0"); slackCode(err) != "user_not_found" {
		t.Errorf("users.info miss: %v", err)
	}
	if us, err := b.client.GetUsersInfo("U01ALICE00", "U02BOB0000"); err != nil || len(*us) != 2 {
		t.Errorf("users.info for two: %v %v", us, err)
	}
	at, err := b.client.AuthTest()
	if err != nil || at.UserID != BotUserID || at.TeamID != TeamID {
		t.Errorf("auth.test: %+v %v", at, err)
	}
	ch, _, _ := b.client.PostMessage("#data-alerts", slack.MsgOptionText("x", false))
	info, err := b.client.GetConversationInfo(&slack.GetConversationInfoInput{ChannelID: ch})
	if err != nil || info.Name != "data-alerts" || info.ID != ch {
		t.Errorf("conversations.info: %+v %v", info, err)
	}
}

func TestSlackRateLimitAndDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.FailNext("chat.postMessage", http.StatusTooManyRequests, 1500*time.Millisecond)
	_, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("after FailNext 429: %v, want a RateLimitedError with RetryAfter 2s (rounded up)", err)
	}
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("the call after the fault: %v", err)
	}
	// A fault for another method leaves this one alone; "" matches any.
	b.srv.FailNext("users.info", http.StatusInternalServerError, 0)
	b.srv.FailNext("", http.StatusBadGateway, 0)
	var sc slack.StatusCodeError
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); !errors.As(err, &sc) || sc.Code != 502 {
		t.Errorf("FailNext any method: %v, want 502", err)
	}
	if _, err := b.client.GetUserInfo("U01ALICE00"); !errors.As(err, &sc) || sc.Code != 500 {
		t.Errorf("FailNext users.info: %v, want 500", err)
	}
	b.srv.FailNextError("chat.postMessage", "channel_not_found")
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); slackCode(err) != "channel_not_found" {
		t.Errorf("FailNextError: %v", err)
	}

	b.srv.SetDown(true)
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); !errors.As(err, &sc) || sc.Code != 503 {
		t.Errorf("down: %v, want a 503 StatusCodeError", err)
	}
	b.srv.SetDown(false)
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("up again: %v", err)
	}

	calls := b.srv.Calls()
	wantStatus := []int{429, 200, 502, 500, 200, 503, 200}
	if len(calls) != len(wantStatus) {
		t.Fatalf("%d calls recorded, want %d: %+v", len(calls), len(wantStatus), calls)
	}
	for i, c := range calls {
		if c.Status != wantStatus[i] {
			t.Errorf("call %d (%s): status %d, want %d", i, c.Method, c.Status, wantStatus[i])
		}
	}
	if calls[0].Error != "ratelimited" || calls[4].Error != "channel_not_found" {
		t.Errorf("recorded errors: %q %q", calls[0].Error, calls[4].Error)
	}
	if n := len(b.srv.Messages()); n != 2 {
		t.Errorf("%d messages; failed calls must post nothing", n)
	}
}

func TestSlackAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	anon := slack.New("", slack.OptionAPIURL(b.srv.APIURL()))
	if _, _, err := anon.PostMessage("#a", slack.MsgOptionText("x", false)); slackCode(err) != "not_authed" {
		t.Errorf("no token: %v, want not_authed", err)
	}
	user := slack.New("xox"+"p-"+"not-a-bot-token", slack.OptionAPIURL(b.srv.APIURL()))
	if _, _, err := user.PostMessage("#a", slack.MsgOptionText("x", false)); slackCode(err) != "invalid_auth" {
		t.Errorf("not a bot token: %v, want invalid_auth", err)
	}
	if len(b.srv.Messages()) != 0 {
		t.Error("an unauthenticated call posted")
	}

	// A bearer header works as well as slack-go's token form field.
	post := func(auth string) string {
		req, _ := http.NewRequest("POST", b.srv.APIURL()+"chat.postMessage",
			strings.NewReader(url.Values{"channel": {"#a"}, "text": {"hi"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Error
	}
	if code := post("Bearer " + b.token); code != "" {
		t.Errorf("bearer token: %s", code)
	}
	if code := post("Basic dXNlcjpwYXNz"); code != "invalid_auth" {
		t.Errorf("basic auth: %q, want invalid_auth", code)
	}
}

func TestSlackCallsRedactTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.GetUserByEmail("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	short := slack.New(botToken("abc"), slack.OptionAPIURL(b.srv.APIURL()))
	if _, err := short.AuthTest(); err != nil {
		t.Fatal(err)
	}
	calls := b.srv.Calls()
	want := []string{"xoxb-…wxyz", "xoxb-…wxyz", "xoxb-…"}
	for i, c := range calls {
		if c.Token != want[i] {
			t.Errorf("call %d token %q, want %q", i, c.Token, want[i])
		}
		if _, has := c.Params["token"]; has {
			t.Errorf("call %d keeps the token in its params", i)
		}
	}
	all, _ := json.Marshal(calls)
	if strings.Contains(string(all), b.token) || strings.Contains(string(all), "abcdefgh") {
		t.Errorf("calls hold the token: %s", all)
	}
	if calls[0].Params["text"] != "x" || calls[0].Params["channel"] != "#a" {
		t.Errorf("params of chat.postMessage: %v", calls[0].Params)
	}
}

func TestSlackHandlerJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(b.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var empty []Message
	get("/_messages", &empty)
	if empty == nil || len(empty) != 0 {
		t.Errorf("no messages yet: %v, want []", empty)
	}
	blocks := slack.MsgOptionBlocks(slack.NewHeaderBlock(slack.NewTextBlockObject("plain_text", "Usage", false, false)))
	if _, _, err := b.client.PostMessage("#a", slack.MsgOptionText("x", false), blocks); err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	get("/_messages", &msgs)
	if len(msgs) != 1 || msgs[0].Text != "x" || msgs[0].Blocks == nil {
		t.Errorf("/_messages: %+v", msgs)
	}
	var calls []Call
	get("/_calls", &calls)
	if len(calls) != 1 || calls[0].Method != "chat.postMessage" || calls[0].Token != "xoxb-…wxyz" {
		t.Errorf("/_calls: %+v", calls)
	}
	// blocks are recorded decoded, not as JSON text.
	if _, isList := calls[0].Params["blocks"].([]any); !isList {
		t.Errorf("blocks param %T, want a decoded list", calls[0].Params["blocks"])
	}
}

func TestSlackRedact(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		botToken("short"):                  "xoxb-…",
		botToken("1234-5678-abcdefgh"):     "xoxb-…efgh",
		"Basic " + strings.Repeat("z", 20): "…zzzz",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// slackCode is the Slack error code of err, "" if it is not a Slack API error.
func slackCode(err error) string {
	var e slack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	return ""
}
