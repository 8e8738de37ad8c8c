package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/tasktypes"

	"github.com/updraft-dev/updraft/emulators/emutest"
	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-alerts-")
	if err != nil {
		panic(err)
	}
	sm, err := smemu.Start("", filepath.Join(dir, "secrets.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv(smemu.EnvVar, sm.Addr)
	defer func() { sm.Stop(); os.RemoveAll(dir) }()
	emutest.Main(m)
}

// The fake workspace's members: kim owns the DAGs by default; nobody@ is unknown to Slack.
const (
	kimEmail  = "kim@example.com"
	kimID     = "U0KIM00001"
	leeEmail  = "lee@example.com"
	leeID     = "U0LEE00001"
	botToken  = "xoxb-alerts-test-token-0042"
	apiSecret = "sk-live-Zq8vT3xW9yP2"
	uiURL     = "https://updraft.example.com"
)

// clock is a fake clock, shared by the engine and the alerter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// sleeper records the alerter's waits instead of sleeping them (a thread's poll, which waits
// for another goroutine, yields for a moment).
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

const pollEvery = 2 * time.Millisecond

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if d == pollEvery {
		time.Sleep(d)
		return ctx.Err()
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// recorder keeps the task events the engine publishes (and publishes them), so tests hand
// them to the alerter themselves, as many times as they like.
type recorder struct {
	engine.Publisher
	mu     sync.Mutex
	events [][]byte
}

func (r *recorder) PublishEvent(ctx context.Context, data []byte) error {
	r.mu.Lock()
	r.events = append(r.events, append([]byte(nil), data...))
	r.mu.Unlock()
	return r.Publisher.PublishEvent(ctx, data)
}

// take returns the events recorded since the last take.
func (r *recorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// bundle is one test's world: its own project on the emulators, its own fake Slack.
type bundle struct {
	ctx     context.Context
	project string
	store   *fsstore.Store
	queue   *psqueue.Queue
	eng     *engine.Engine
	clock   *clock
	sleeper *sleeper
	slack   *slackfake.Server
	alerter *alerts.Alerter
	tokens  alerts.Tokens
	worker  *taskrun.Worker
	events  *recorder
	log     *localtest.SyncBuffer
}

func setup(t *testing.T, cfg alerts.Config) *bundle {
	t.Helper()
	ctx := context.Background()
	project := emutest.Project(t)
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	fake, err := slackfake.Start([]slackfake.User{{ID: kimID, Name: "kim", Email: kimEmail}, {ID: leeID, Name: "lee", Email: leeEmail}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)

	// The bot token is connection `slack`'s password, in Secret Manager (the stand-in).
	sm, err := secrets.Open(ctx, project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	if err := sm.Set(ctx, "updraft-connections-slack", `{"conn_type": "slack", "password": "`+botToken+`"}`); err != nil {
		t.Fatal(err)
	}
	if err := sm.Set(ctx, "api-token", apiSecret); err != nil {
		t.Fatal(err)
	}
	newResolver, closeSecrets, err := secrets.Factory(ctx, project, os.Getenv)
	if err != nil || newResolver == nil {
		t.Fatalf("secrets factory: %v (resolver %v)", err, newResolver != nil)
	}
	t.Cleanup(closeSecrets)
	tokens := func(ctx context.Context, conn string) (string, error) {
		c, err := newResolver().Conn(ctx, conn)
		return c.Password, err
	}

	clk := &clock{t: time.Date(2025, 1, 10, 0, 30, 0, 0, time.UTC)}
	logBuf := &localtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, nil))
	rec := &recorder{Publisher: q}
	eng := engine.New(st, rec, engine.Config{}, clk.Now, log)
	sl := &sleeper{}
	if cfg.SlackAPIURL == "" {
		cfg.SlackAPIURL = fake.URL
	}
	if cfg.UIURL == "" {
		cfg.UIURL = uiURL
	}
	cfg.Now, cfg.Sleep, cfg.PollEvery = clk.Now, sl.Sleep, pollEvery
	b := &bundle{ctx: ctx, project: project, store: st, queue: q, eng: eng, clock: clk, sleeper: sl, slack: fake,
		tokens: tokens, events: rec, log: logBuf}
	b.alerter = alerts.New(st, eng, tokens, cfg, log)

	reg := tasktypes.Builtins()
	reg.Add(taskrun.Type{Name: "test.ok", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		return engine.Result{State: scheduler.AttemptSuccess}
	}})
	reg.Add(taskrun.Type{Name: "test.fail", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		return engine.Result{State: scheduler.AttemptFailed, Error: fmt.Sprintf("loading rows\npartner API returned 503 (try %d)", tc.Ref.TryNumber)}
	}})
	// test.leak fails with an error that quotes a secret it read, as careless code does.
	reg.Add(taskrun.Type{Name: "test.leak", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		v, err := tc.Secrets.Secret(ctx, "api-token")
		if err != nil {
			return engine.Result{State: scheduler.AttemptFailed, Error: err.Error()}
		}
		return engine.Result{State: scheduler.AttemptFailed, Error: "GET https://api.example.com/orders?key=" + v + ": 401 Unauthorized"}
	}})
	b.worker = &taskrun.Worker{Engine: eng, Registry: reg, Name: "test", Log: log, NewResolver: newResolver}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logBuf.String())
		}
	})
	return b
}

var testTypes = append(append([]string{}, dag.BuiltinTaskTypes...), "test.ok", "test.fail", "test.leak")

func (b *bundle) deploy(t *testing.T, src string) *dag.DAG {
	t.Helper()
	d, err := dag.Parse("test.yaml", []byte(src), dag.Options{
		TaskTypes:    testTypes,
		ValidateCron: func(s string) error { _, err := schedule.ParseCron(s); return err },
	})
	if err != nil {
		t.Fatalf("parse DAG: %v", err)
	}
	if _, err := b.eng.Deploy(b.ctx, d, []byte(src)); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return d
}

// trigger starts a manual run at the fake clock's now.
func (b *bundle) trigger(t *testing.T, dagID string) *scheduler.Run {
	t.Helper()
	r, err := b.eng.Trigger(b.ctx, dagID, nil, b.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// execute runs a queued task's attempt with the worker (its outcome and event are recorded).
func (b *bundle) execute(t *testing.T, r *scheduler.Run, task string) {
	t.Helper()
	v, err := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatalf("task instance %s: %v", task, err)
	}
	if v.Rec.State != scheduler.TaskQueued {
		t.Fatalf("task %s is %s, want queued", task, v.Rec.State)
	}
	ref := scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: task, TryNumber: v.Rec.TryNumber, AttemptID: v.Rec.AttemptID}
	if err := b.worker.Execute(b.ctx, ref); err != nil {
		t.Fatalf("execute %s: %v", task, err)
	}
}

// deliver hands the recorded events to the alerter, in order, and fails on an error.
func (b *bundle) deliver(t *testing.T, events [][]byte) {
	t.Helper()
	for _, ev := range events {
		if err := b.alerter.HandleEvent(b.ctx, ev); err != nil {
			t.Fatalf("handle event %s: %v", ev, err)
		}
	}
}

func (b *bundle) runState(t *testing.T, r *scheduler.Run) scheduler.RunState {
	t.Helper()
	v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Rec.State
}

// posted returns the messages of a channel (by name), parents and replies, oldest first.
func (b *bundle) posted(channel string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range b.slack.Messages() {
		if m.ChannelName == strings.TrimPrefix(channel, "#") {
			out = append(out, m)
		}
	}
	return out
}

// calls returns the fake's calls of one method.
func (b *bundle) calls(method string) []slackfake.Call {
	var out []slackfake.Call
	for _, c := range b.slack.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// content is everything a message shows, as one string: text, blocks and attachments.
func content(m slackfake.Message) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"text": m.Text, "blocks": m.Blocks, "attachments": m.Attachments})
	return buf.String()
}

// color is the colour bar of a message's first attachment.
func color(m slackfake.Message) string {
	atts, _ := m.Attachments.([]any)
	if len(atts) == 0 {
		return ""
	}
	a, _ := atts[0].(map[string]any)
	c, _ := a["color"].(string)
	return c
}

func parents(ms []slackfake.Message) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range ms {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func replies(ms []slackfake.Message, parentTS string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range ms {
		if m.ThreadTS == parentTS {
			out = append(out, m)
		}
	}
	return out
}
