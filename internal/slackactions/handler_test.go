package slackactions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/emulators/emutest"
	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/slackactions"
	"github.com/updraft-dev/updraft/scheduler"
)

var (
	updraftBin  string
	secretsAddr string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-slackactions-")
	if err != nil {
		panic(err)
	}
	updraftBin = filepath.Join(dir, "updraft")
	if out, err := exec.Command("go", "build", "-o", updraftBin, "github.com/updraft-dev/updraft/cmd/updraft").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build updraft: %v\n%s", err, out)
		os.Exit(2)
	}
	sm, err := smemu.Start("", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	secretsAddr = sm.Addr
	defer os.RemoveAll(dir)
	defer sm.Stop()
	emutest.Main(m)
}

const (
	signingSecret = "test-signing-secret-0123456789"
	botToken      = "xoxb-test-bot-token-0000"
)

// The fake workspace: the DAG's owner, a viewer, someone with no role, and a member whose
// profile has no email (an app without users:read.email sees that).
var slackUsers = []slackfake.User{
	{ID: "U0OWNER001", Name: "olive", Email: "owner@example.com"},
	{ID: "U0VIEWER01", Name: "vic", Email: "viewer@example.com"},
	{ID: "U0STRANGE1", Name: "sam", Email: "stranger@example.com"},
	{ID: "U0NOEMAIL1", Name: "nomail", Email: ""},
}

type bundle struct {
	ctx      context.Context
	project  string
	stack    *local.Stack // nil without workers
	eng      *engine.Engine
	store    *fsstore.Store
	access   *access.Service
	slack    *slackfake.Server
	h        *slackactions.Handler
	logs     *localtest.SyncBuffer
	offset   atomic.Int64 // the handler's clock: now + offset
	outcomes chan slackactions.Outcome
}

// setup gives a test its own project, fake Slack and handler; withWorkers runs a local
// stack (dispatcher with worker subprocesses, advancer) so that cleared tasks really run.
func setup(t *testing.T, withWorkers bool) *bundle {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bundle{ctx: ctx, project: emutest.Project(t), logs: &localtest.SyncBuffer{}, outcomes: make(chan slackactions.Outcome, 16)}
	log := slog.New(slog.NewTextHandler(b.logs, nil))
	fake, err := slackfake.Start(slackUsers)
	if err != nil {
		t.Fatal(err)
	}
	b.slack = fake
	if withWorkers {
		set, ok := emulators.FromEnv()
		if !ok {
			t.Fatal("emulators not in the environment")
		}
		st, err := local.Open(ctx, local.Config{
			Project: b.project, Env: set.Env(), LogDir: t.TempDir(), WorkerCmd: []string{updraftBin, "worker"},
			Log: log, WorkerStderr: b.logs,
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = st.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done; st.Close() })
		b.stack, b.eng, b.store = st, st.Engine, st.Store
	} else {
		st, err := fsstore.Open(ctx, b.project)
		if err != nil {
			t.Fatal(err)
		}
		q, err := psqueue.Open(ctx, b.project)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); q.Close(); st.Close() })
		b.store, b.eng = st, engine.New(st, q, engine.Config{}, nil, log)
	}
	b.access = access.New(b.store, nil)
	b.h, err = slackactions.New(slackactions.Config{
		SigningSecret: signingSecret, BotToken: botToken, APIURL: fake.URL, Engine: b.eng, Access: b.access,
		Now: b.now, Log: log, OnDone: func(o slackactions.Outcome) { b.outcomes <- o },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.h.Wait()
		fake.Stop()
		if t.Failed() {
			t.Logf("logs:\n%s", b.logs.String())
		}
	})
	return b
}

func (b *bundle) now() time.Time { return time.Now().Add(time.Duration(b.offset.Load())) }

// deploy deploys a DAG owned by owner@example.com whose first task fails until marker
// exists, and triggers a run of it.
func (b *bundle) deploy(t *testing.T, id, marker string) *scheduler.Run {
	t.Helper()
	src := fmt.Sprintf(`id: %s
owner: owner@example.com
timezone: Asia/Seoul
tasks:
  - {id: load, type: shell, retries: 0, with: {command: "test -f %s"}}
  - {id: report, type: shell, needs: [load], with: {command: "true"}}
`, id, marker)
	d, err := dag.Parse(id+".yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.Deploy(b.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := b.eng.Trigger(b.ctx, id, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitRun polls the run until it is in state want (a store watch, with a deadline).
func (b *bundle) waitRun(t *testing.T, r *scheduler.Run, want scheduler.RunState) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Rec.State == want {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a store watch, not a timing assumption
	}
	t.Fatalf("run %s/%s did not become %s within 2 minutes:\n%s", r.DagID, r.RunID, want, b.describe(t, r))
}

func (b *bundle) describe(t *testing.T, r *scheduler.Run) string {
	var sb strings.Builder
	for _, ti := range b.instances(t, r) {
		fmt.Fprintf(&sb, "%s: %s try %d %s\n", ti.Rec.TaskID, ti.Rec.State, ti.Rec.TryNumber, ti.Rec.Error)
	}
	return sb.String()
}

func (b *bundle) instances(t *testing.T, r *scheduler.Run) map[string]fsstore.Versioned[scheduler.TaskInstance] {
	t.Helper()
	tis, err := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fsstore.Versioned[scheduler.TaskInstance]{}
	for _, ti := range tis {
		out[ti.Rec.TaskID] = ti
	}
	return out
}

// postAlert posts an alert with a Retry button, as the alerts package does, and returns the
// message as the fake Slack keeps it.
func (b *bundle) postAlert(t *testing.T, v slackactions.RetryValue) slackfake.Message {
	t.Helper()
	value, _ := json.Marshal(v)
	var blocks []slack.Block
	for _, js := range []string{
		`{"type":"section","block_id":"summary","text":{"type":"mrkdwn","text":":red_circle: *` + v.TaskID + `* failed in *` + v.DagID + `*"}}`,
		fmt.Sprintf(`{"type":"actions","block_id":"buttons","elements":[{"type":"button","action_id":"%s","text":{"type":"plain_text","text":"Retry"},"value":%q}]}`,
			slackactions.ActionRetry, value),
	} {
		blk, err := slack.BlockFromJSON(js)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, blk)
	}
	api := slack.New(botToken, slack.OptionAPIURL(b.slack.APIURL()))
	ch, ts, err := api.PostMessageContext(b.ctx, "#data-alerts", slack.MsgOptionText(v.TaskID+" failed", false),
		slack.MsgOptionBlocks(blocks...), slack.MsgOptionAttachments(slack.Attachment{Color: "danger", Text: "exit 1"}))
	if err != nil {
		t.Fatal(err)
	}
	return b.message(t, ch, ts)
}

func (b *bundle) message(t *testing.T, channel, ts string) slackfake.Message {
	t.Helper()
	for _, m := range b.slack.Messages() {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	t.Fatalf("no message %s in %s", ts, channel)
	return slackfake.Message{}
}

func (b *bundle) ephemerals(to string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range b.slack.Messages() {
		if m.EphemeralTo == to {
			out = append(out, m)
		}
	}
	return out
}

// click is the form body Slack sends when user clicks the message's Retry button.
func click(t *testing.T, user string, m slackfake.Message) []byte {
	t.Helper()
	blocks, _ := m.Blocks.([]any)
	var button map[string]any
	for _, blk := range blocks {
		if els, ok := blk.(map[string]any)["elements"].([]any); ok {
			button = els[0].(map[string]any)
		}
	}
	if button == nil {
		t.Fatal("the message has no button")
	}
	payload := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user), "name": user, "team_id": slackfake.TeamID},
		"api_app_id": "A0UPDRAFT1", "token": "verification-token-unused", "trigger_id": "1.2.3",
		"team":      map[string]any{"id": slackfake.TeamID, "domain": "updraft-fake"},
		"container": map[string]any{"type": "message", "message_ts": m.TS, "channel_id": m.Channel, "is_ephemeral": false},
		"channel":   map[string]any{"id": m.Channel, "name": m.ChannelName},
		"message": map[string]any{"type": "message", "user": slackfake.BotUserID, "bot_id": slackfake.BotID, "ts": m.TS,
			"text": m.Text, "blocks": m.Blocks, "attachments": m.Attachments},
		"response_url": "https://hooks.slack.com/actions/T0FAKE0000/1/abc",
		"actions": []any{map[string]any{"type": "button", "block_id": "buttons", "action_id": button["action_id"],
			"value": button["value"], "text": button["text"], "action_ts": "1740000000.000001"}},
		"state": map[string]any{"values": map[string]any{}},
	}
	js, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte("payload=" + url.QueryEscape(string(js)))
}

// post sends a body to the handler signed at signedAt with secret ("" leaves it unsigned).
func (b *bundle) post(body []byte, secret string, signedAt time.Time) *httptest.ResponseRecorder {
	if secret == "" {
		return b.send(body, "", "")
	}
	ts := strconv.FormatInt(signedAt.Unix(), 10)
	return b.send(body, ts, slackactions.Sign([]byte(secret), ts, body))
}

// send sends a body to the handler with these signature headers.
func (b *bundle) send(body []byte, ts, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/slack/actions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ts != "" {
		req.Header.Set(slackactions.HeaderTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(slackactions.HeaderSignature, sig)
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	return rec
}

// outcome waits for the handler's work to finish and returns the outcome of the one click.
func (b *bundle) outcome(t *testing.T) slackactions.Outcome {
	t.Helper()
	b.h.Wait()
	select {
	case o := <-b.outcomes:
		return o
	default:
		t.Fatal("the click's work finished without an outcome")
		return slackactions.Outcome{}
	}
}

func (b *bundle) audit(t *testing.T, dagID string) []fsstore.AuditEntry {
	t.Helper()
	es, err := b.access.Audit(b.ctx, dagID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestRetryClickByTheOwnerReRunsTheTaskEndToEnd(t *testing.T) {
	b := setup(t, true)
	marker := filepath.Join(t.TempDir(), "input-ready")
	r := b.deploy(t, "flaky_load", marker)
	b.waitRun(t, r, scheduler.RunFailed)
	before := b.instances(t, r)
	if before["load"].Rec.State != scheduler.TaskFailed || before["report"].Rec.State != scheduler.TaskUpstreamFailed {
		t.Fatalf("before the click:\n%s", b.describe(t, r))
	}
	msg := b.postAlert(t, slackactions.RetryValue{DagID: r.DagID, RunID: r.RunID, TaskID: "load"})
	if err := os.WriteFile(marker, nil, 0o644); err != nil { // what the operator fixed upstream
		t.Fatal(err)
	}

	body := click(t, "U0OWNER001", msg) // the DAG's owner holds no grant: the owner rule lets them
	ts := strconv.FormatInt(b.now().Unix(), 10)
	sig := slackactions.Sign([]byte(signingSecret), ts, body)
	rec := b.send(body, ts, sig)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("click answered %d %q; want 200 with an empty body", rec.Code, rec.Body.String())
	}
	out := b.outcome(t)
	if out.Result != access.ResultOK || out.Who != "owner@example.com" || strings.Join(out.Cleared, ",") != "load,report" {
		t.Fatalf("outcome %+v; want ok by owner@example.com clearing load,report", out)
	}
	b.waitRun(t, r, scheduler.RunSuccess)
	after := b.instances(t, r)
	if after["load"].Rec.State != scheduler.TaskSuccess || after["load"].Rec.TryNumber != before["load"].Rec.TryNumber+1 ||
		after["report"].Rec.State != scheduler.TaskSuccess {
		t.Fatalf("after the click:\n%s", b.describe(t, r))
	}

	updated := b.message(t, msg.Channel, msg.TS)
	blocks, _ := json.Marshal(updated.Blocks)
	if updated.Updated != 1 || !strings.Contains(string(blocks), "Retried by \\u003c@U0OWNER001\\u003e at ") || !strings.Contains(string(blocks), " KST") {
		t.Fatalf("message after the click (updated %d): %s", updated.Updated, blocks)
	}
	if origBlocks, _ := json.Marshal(msg.Blocks); !strings.HasPrefix(string(blocks), strings.TrimSuffix(string(origBlocks), "]")) {
		t.Fatalf("the message's blocks changed:\n%s\nwant them kept:\n%s", blocks, origBlocks)
	}
	if updated.Text != msg.Text || updated.Attachments == nil {
		t.Fatalf("text or attachments lost: %+v", updated)
	}
	es := b.audit(t, r.DagID)
	if len(es) != 1 || es[0].Action != slackactions.AuditAction || es[0].Who != "owner@example.com" || es[0].From != "slack:U0OWNER001" ||
		es[0].Result != access.ResultOK || es[0].RunID != r.RunID || es[0].TaskID != "load" || !strings.Contains(es[0].Detail, "cleared load, report") {
		t.Fatalf("audit: %+v", es)
	}

	// The same signed request again, within 5 minutes: refused, nothing re-run.
	rec = b.send(body, ts, sig)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "already received") {
		t.Fatalf("replay answered %d %q; want 401 already received", rec.Code, rec.Body.String())
	}
	b.h.Wait()
	if len(b.outcomes) != 0 {
		t.Fatal("the replay was acted on")
	}
	if n := len(b.audit(t, r.DagID)); n != 1 {
		t.Fatalf("%d audit entries; want 1 (the replay is not one)", n)
	}
	if again := b.instances(t, r); !again["load"].UpdateTime.Equal(after["load"].UpdateTime) {
		t.Fatalf("the replay changed the task: %+v", again["load"].Rec)
	}
	if !strings.Contains(b.logs.String(), "refused a replayed Slack request") {
		t.Fatalf("the replay was not logged:\n%s", b.logs.String())
	}

	// Another instance of the endpoint (Cloud Run runs up to two; a restart forgets memory):
	// the claim is in Firestore, so it refuses the resend too.
	second, err := slackactions.New(slackactions.Config{
		SigningSecret: signingSecret, BotToken: botToken, APIURL: b.slack.URL, Engine: b.eng, Access: b.access,
		Now: b.now, Log: slog.New(slog.NewTextHandler(b.logs, nil)), OnDone: func(o slackactions.Outcome) { b.outcomes <- o },
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/slack/actions", bytes.NewReader(body))
	req.Header.Set(slackactions.HeaderTimestamp, ts)
	req.Header.Set(slackactions.HeaderSignature, sig)
	rec = httptest.NewRecorder()
	second.ServeHTTP(rec, req)
	second.Wait()
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "already received") || len(b.outcomes) != 0 {
		t.Fatalf("replay to a second instance answered %d %q (%d outcomes); want 401 already received", rec.Code, rec.Body.String(), len(b.outcomes))
	}
	if again := b.instances(t, r); !again["load"].UpdateTime.Equal(after["load"].UpdateTime) {
		t.Fatalf("the replay to a second instance changed the task: %+v", again["load"].Rec)
	}
}

func TestRefusedClicksChangeNothingAndSayWhy(t *testing.T) {
	b := setup(t, false) // no workers: the run's tasks stay queued, and any write would show
	r := b.deploy(t, "guarded", "/nonexistent")
	if _, err := b.access.Grant(b.ctx, "viewer@example.com", access.Viewer, access.Actor{Who: "admin@example.com", From: "cli"}); err != nil {
		t.Fatal(err)
	}
	msg := b.postAlert(t, slackactions.RetryValue{DagID: r.DagID, RunID: r.RunID, TaskID: "load"})
	before := b.instances(t, r)
	runBefore, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, who  string
		tell       []string
		auditInMsg string
	}{
		{"U0VIEWER01", "viewer@example.com", []string{"needs the *operator* role on DAG `guarded`", "hold only *viewer*",
			"`updraft users grant viewer@example.com operator`", "owner@example.com"}, "holds only viewer"},
		{"U0STRANGE1", "stranger@example.com", []string{"needs the *operator* role on DAG `guarded`", "hold no role",
			"`updraft users grant stranger@example.com operator`"}, "holds no role"},
		{"U0NOEMAIL1", "slack:U0NOEMAIL1", []string{"could not read your email address from Slack"}, "users:read.email"},
	}
	for _, c := range cases {
		rec := b.post(click(t, c.user, msg), signingSecret, b.now())
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.user, rec.Code, rec.Body.String())
		}
		out := b.outcome(t)
		if out.Result != access.ResultRefused || out.Who != c.who || len(out.Cleared) != 0 {
			t.Fatalf("%s: outcome %+v; want refused, who %s", c.user, out, c.who)
		}
		eph := b.ephemerals(c.user)
		if len(eph) != 1 || eph[0].Channel != msg.Channel {
			t.Fatalf("%s: ephemeral messages %+v; want one in %s", c.user, eph, msg.Channel)
		}
		for _, want := range append(c.tell, "Nothing was changed") {
			if !strings.Contains(eph[0].Text, want) {
				t.Errorf("%s was told %q; want it to say %q", c.user, eph[0].Text, want)
			}
		}
	}
	after := b.instances(t, r)
	for id, ti := range before {
		if !after[id].UpdateTime.Equal(ti.UpdateTime) {
			t.Errorf("task %s was written: %+v → %+v", id, ti.Rec, after[id].Rec)
		}
	}
	if runAfter, _ := b.store.GetRun(b.ctx, r.DagID, r.RunID); !runAfter.UpdateTime.Equal(runBefore.UpdateTime) {
		t.Errorf("the run was written: %+v", runAfter.Rec)
	}
	if m := b.message(t, msg.Channel, msg.TS); m.Updated != 0 {
		t.Errorf("the alert was updated %d times", m.Updated)
	}
	es := b.audit(t, r.DagID)
	if len(es) != len(cases) {
		t.Fatalf("%d audit entries; want %d: %+v", len(es), len(cases), es)
	}
	for i, e := range es { // newest first
		c := cases[len(cases)-1-i]
		if e.Result != access.ResultRefused || e.Who != c.who || e.From != "slack:"+c.user || e.Action != slackactions.AuditAction ||
			!strings.Contains(e.Detail, c.auditInMsg) {
			t.Errorf("audit entry %+v; want refused for %s saying %q", e, c.who, c.auditInMsg)
		}
	}
}

func TestUnverifiedOrMalformedRequestsChangeNothing(t *testing.T) {
	b := setup(t, false)
	r := b.deploy(t, "untouched", "/nonexistent")
	msg := b.postAlert(t, slackactions.RetryValue{DagID: r.DagID, RunID: r.RunID, TaskID: "load"})
	callsBefore := len(b.slack.Calls())
	before := b.instances(t, r)
	good := click(t, "U0OWNER001", msg)
	now := b.now()
	otherAction := bytes.Replace(good, []byte(slackactions.ActionRetry), []byte("updraft_something_else"), 1)
	viewLog := bytes.Replace(good, []byte(slackactions.ActionRetry), []byte(slackactions.ActionViewLog), 1)
	cases := []struct {
		name   string
		body   []byte
		secret string
		at     time.Time
		code   int
		says   string
	}{
		{"bad signature", good, "not-the-signing-secret", now, http.StatusUnauthorized, "signature does not match"},
		{"no signature", good, "", now, http.StatusUnauthorized, "not signed"},
		{"replayed after 5 minutes", good, signingSecret, now.Add(-5*time.Minute - time.Second), http.StatusUnauthorized, "more than 5 minutes old"},
		{"from the future", good, signingSecret, now.Add(6 * time.Minute), http.StatusUnauthorized, "in the future"},
		{"malformed payload", []byte("payload=%7Bnot-json"), signingSecret, now, http.StatusBadRequest, "not JSON"},
		{"unknown action", otherAction, signingSecret, now, http.StatusBadRequest, "unknown action_id updraft_something_else"},
		{"a View log link click: 200 and nothing done", viewLog, signingSecret, now, http.StatusOK, ""},
	}
	for _, c := range cases {
		rec := b.post(c.body, c.secret, c.at)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s: %d %q; want %d saying %q", c.name, rec.Code, rec.Body.String(), c.code, c.says)
		}
	}
	// A request signed correctly, received when the handler's clock says 6 minutes later.
	b.offset.Store(int64(6 * time.Minute))
	if rec := b.post(good, signingSecret, now); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "replayed") {
		t.Errorf("late delivery: %d %q; want 401 replayed", rec.Code, rec.Body.String())
	}
	b.h.Wait()
	if len(b.outcomes) != 0 {
		t.Fatalf("%d requests were acted on", len(b.outcomes))
	}
	if n := len(b.slack.Calls()); n != callsBefore {
		t.Fatalf("%d calls to Slack; want none: %+v", n-callsBefore, b.slack.Calls()[callsBefore:])
	}
	if es := b.audit(t, ""); len(es) != 0 {
		t.Fatalf("audit entries: %+v", es)
	}
	after := b.instances(t, r)
	for id, ti := range before {
		if !after[id].UpdateTime.Equal(ti.UpdateTime) {
			t.Errorf("task %s was written", id)
		}
	}
	logs := b.logs.String()
	if n := strings.Count(logs, "refused an unverified Slack request"); n != 5 {
		t.Errorf("%d unverified requests logged; want 5:\n%s", n, logs)
	}
	if n := strings.Count(logs, "refused a malformed Slack action"); n != 2 {
		t.Errorf("%d malformed requests logged; want 2:\n%s", n, logs)
	}
	if strings.Contains(logs, signingSecret) || strings.Contains(logs, botToken) {
		t.Errorf("the logs show a secret:\n%s", logs)
	}
}

func TestFromSecretsReadsTheSigningSecretAndTheBotToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	project := emutest.Project(t)
	sm, err := secrets.Open(ctx, project, func(k string) string {
		if k == smemu.EnvVar {
			return secretsAddr
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := slackactions.Config{Engine: engine.New(st, nil, engine.Config{}, nil, nil), Access: access.New(st, nil)}
	if _, err := slackactions.FromSecrets(ctx, sm, cfg); !errors.Is(err, slackactions.ErrNotConfigured) || !strings.Contains(err.Error(), slackactions.SigningSecretName) {
		t.Fatalf("no secrets: %v; want ErrNotConfigured naming %s", err, slackactions.SigningSecretName)
	}
	if err := sm.Set(ctx, slackactions.SigningSecretName, "stored-signing-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := slackactions.FromSecrets(ctx, sm, cfg); !errors.Is(err, slackactions.ErrNotConfigured) || !strings.Contains(err.Error(), "updraft-connections-slack") {
		t.Fatalf("no bot token: %v; want ErrNotConfigured naming updraft-connections-slack", err)
	}
	if err := sm.Set(ctx, "updraft-connections-slack", `{"conn_type": "slack", "password": "`+botToken+`"}`); err != nil {
		t.Fatal(err)
	}
	h, err := slackactions.FromSecrets(ctx, sm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Signed with the stored secret: verified (then refused as malformed), not 401.
	body := []byte("payload=%7B%7D")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for secret, want := range map[string]int{"stored-signing-secret": http.StatusBadRequest, signingSecret: http.StatusUnauthorized} {
		req := httptest.NewRequest(http.MethodPost, "/slack/actions", bytes.NewReader(body))
		req.Header.Set(slackactions.HeaderTimestamp, ts)
		req.Header.Set(slackactions.HeaderSignature, slackactions.Sign([]byte(secret), ts, body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("signed with %q: %d; want %d", secret, rec.Code, want)
		}
	}
}
