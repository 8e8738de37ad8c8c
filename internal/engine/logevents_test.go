package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// logRecorder is a slog.Handler that keeps every record's attributes, flattened by key.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]map[string]any
	attrs []slog.Attr
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, lines: &[]map[string]any{}}
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := map[string]any{"msg": rec.Message, "level": rec.Level.String()}
	for _, a := range r.attrs {
		line[a.Key] = a.Value.Resolve().Any()
	}
	rec.Attrs(func(a slog.Attr) bool {
		line[a.Key] = a.Value.Resolve().Any()
		return true
	})
	r.mu.Lock()
	*r.lines = append(*r.lines, line)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *r
	c.attrs = append(append([]slog.Attr{}, r.attrs...), as...)
	return &c
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// events returns the lines whose event is name and whose attributes include match.
func (r *logRecorder) events(name string, match map[string]any) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
next:
	for _, l := range *r.lines {
		if l[engine.LogKeyEvent] != name {
			continue
		}
		for k, v := range match {
			if l[k] != v {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// one returns the single line of an event matching match, failing the test on zero or more.
func (b *bundle) one(t *testing.T, name string, match map[string]any) map[string]any {
	t.Helper()
	got := b.logs.events(name, match)
	if len(got) != 1 {
		t.Fatalf("%d %q lines matching %v; want exactly 1: %v", len(got), name, match, got)
	}
	return got[0]
}

func TestLogContractLinesCarryTheMetricsFields(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	// test.slow takes 1.5 s of the fake clock, so its duration is known.
	b.worker.Registry.Add(taskrun.Type{Name: "test.slow", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		b.clock.Add(1500 * time.Millisecond)
		return engine.Result{State: scheduler.AttemptSuccess}
	}})
	b.deploy(t, `id: contract
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.fail, needs: [a], retries: 1, retry_delay: 0s}
`)
	if rep := b.tick(t); rep.RunsCreated != 1 {
		t.Fatalf("tick created %d runs; want 1", rep.RunsCreated)
	}
	// The run of [Jan 9, Jan 10) starts at 00:30 on Jan 10: 30 minutes after its interval.
	started := b.one(t, engine.LogEventDagrunStarted, map[string]any{engine.LogKeyDagID: "contract"})
	if started[engine.LogKeyScheduleDelayMS] != int64(30*60*1000) || started[engine.LogKeyRunType] != "scheduled" ||
		started[engine.LogKeyRunID] != "scheduled__2025-01-09T00:00:00Z" {
		t.Fatalf("dagrun_started = %v; want schedule_delay_ms 1800000 of the scheduled run", started)
	}
	r := &scheduler.Run{DagID: "contract", RunID: "scheduled__2025-01-09T00:00:00Z"}
	b.execute(t, r, "a")
	b.execute(t, r, "b") // fails, retried at once
	b.execute(t, r, "b") // fails for good
	ok := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "a"})
	if ok[engine.LogKeyState] != "success" || ok[engine.LogKeyDagID] != "contract" || ok[engine.LogKeyDurationMS] != int64(0) ||
		ok[engine.LogKeyTryNumber] != int64(1) || ok[engine.LogKeyAttemptState] != "success" {
		t.Fatalf("task_finished of a = %v", ok)
	}
	retry := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "b", engine.LogKeyTryNumber: int64(1)})
	failed := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "b", engine.LogKeyTryNumber: int64(2)})
	if retry[engine.LogKeyState] != "up_for_retry" || retry[engine.LogKeyAttemptState] != "failed" {
		t.Fatalf("first try of b = %v; want state up_for_retry (the metric's failed counts only final failures)", retry)
	}
	if failed[engine.LogKeyState] != "failed" || failed[engine.LogKeyReason] != "boom" || failed["level"] != "WARN" {
		t.Fatalf("second try of b = %v; want a failed warning with the reason", failed)
	}

	// A manual run has no schedule delay; a slow task reports its duration.
	b.deploy(t, `id: slow
owner: owner@example.com
tasks:
  - {id: a, type: test.slow}
`)
	mr := b.trigger(t, "slow")
	manual := b.one(t, engine.LogEventDagrunStarted, map[string]any{engine.LogKeyDagID: "slow"})
	if _, has := manual[engine.LogKeyScheduleDelayMS]; has || manual[engine.LogKeyRunType] != "manual" {
		t.Fatalf("manual dagrun_started = %v; want no schedule_delay_ms", manual)
	}
	b.execute(t, mr, "a")
	if l := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyDagID: "slow"}); l[engine.LogKeyDurationMS] != int64(1500) {
		t.Fatalf("task_finished of the slow task = %v; want duration_ms 1500", l)
	}
}

func TestLogEventsOncePerOccurrenceUnderRaces(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute, RepublishAfter: 30 * time.Second})
	b.deploy(t, `id: race
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok}
  - {id: c, type: test.ok}
`)
	ticks := func() {
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if _, err := b.eng.Tick(b.ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	ticks()
	b.one(t, engine.LogEventDagrunStarted, map[string]any{engine.LogKeyDagID: "race"})
	r := &scheduler.Run{DagID: "race", RunID: "scheduled__2025-01-09T00:00:00Z"}

	// a: its worker records the result and dies; b: its worker is lost (the lease runs out
	// and no executor knows it); c: its worker finishes, and the event is handled again.
	ca, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "dies"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.eng.RecordOnly(b.ctx, ca, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	refB := b.ref(t, r, "b")
	if _, err := b.eng.Claim(b.ctx, refB, engine.Worker{Name: "lost", ExecutorRef: "nowhere"}); err != nil {
		t.Fatal(err)
	}
	refC := b.ref(t, r, "c")
	b.execute(t, r, "c")
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: refC, State: scheduler.TaskSuccess})
	for range 2 {
		if err := b.eng.HandleEvent(b.ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Add(2 * time.Minute)
	ticks() // five ticks race for the follow-up of a and the lost worker of b
	ticks() // and nothing is left for the next ones

	b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "a", engine.LogKeyState: "success"})
	b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "c", engine.LogKeyState: "success"})
	lost := b.one(t, engine.LogEventLostWorker, map[string]any{engine.LogKeyDagID: "race"})
	if lost[engine.LogKeyTaskID] != "b" || lost[engine.LogKeyRunID] != r.RunID || lost[engine.LogKeyAttemptID] != refB.AttemptID {
		t.Fatalf("lost_worker = %v", lost)
	}
	fb := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "b"})
	if fb[engine.LogKeyState] != "failed" || fb[engine.LogKeyAttemptState] != "lost" || fb[engine.LogKeyDurationMS] != int64(2*60*1000) {
		t.Fatalf("task_finished of the lost worker's task = %v; want failed, lost, 120000 ms", fb)
	}
	if n := len(b.logs.events(engine.LogEventDagrunStarted, nil)); n != 1 {
		t.Fatalf("%d dagrun_started lines; want 1", n)
	}
}

// publishRaw publishes data to one of the project's topics, as Pub/Sub does when it
// dead-letters a message.
func publishRaw(t *testing.T, b *bundle, topic string, data []byte) {
	t.Helper()
	c, err := pubsub.NewClient(b.ctx, b.project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := c.Publisher(topic)
	defer p.Stop()
	if _, err := p.Publish(b.ctx, &pubsub.Message{Data: data}).Get(b.ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTickDrainsDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: dead
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok, needs: [a]}
`)
	r := b.trigger(t, "dead")
	ref := b.ref(t, r, "a")
	msg, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ref, Type: "test.ok"})
	publishRaw(t, b, psqueue.TopicTasksDead, msg)
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: ref, State: scheduler.TaskSuccess})
	publishRaw(t, b, psqueue.TopicEventsDead, ev)
	publishRaw(t, b, psqueue.TopicEventsDead, []byte("not json"))

	// Without SetDeadLetters (the local stack, which streams them itself) the tick leaves them.
	if rep := b.tick(t); rep.DeadLettered != 0 {
		t.Fatalf("a tick without SetDeadLetters handled %d dead letters", rep.DeadLettered)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskQueued {
		t.Fatalf("a is %s; want still queued", s)
	}

	b.eng.SetDeadLetters(b.queue)
	rep := b.tick(t)
	if rep.DeadLettered != 3 || len(rep.Errors) > 0 {
		t.Fatalf("tick handled %d dead letters (%v); want 3", rep.DeadLettered, rep.Errors)
	}
	ti := b.ti(t, r, "a")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "dead-lettered") {
		t.Fatalf("a is %s (%q); want failed as dead-lettered", ti.State, ti.Error)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskUpstreamFailed {
		t.Fatalf("b is %s; want upstream_failed", s)
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", s)
	}
	task := b.one(t, engine.LogEventDeadLettered, map[string]any{engine.LogKeySubscription: psqueue.SubTasksDead})
	if task[engine.LogKeyOutcome] != "task_failed" || task[engine.LogKeyAttemptID] != ref.AttemptID {
		t.Fatalf("dead_lettered of the task message = %v", task)
	}
	b.one(t, engine.LogEventDeadLettered, map[string]any{engine.LogKeySubscription: psqueue.SubEventsDead, engine.LogKeyOutcome: "logged"})
	b.one(t, engine.LogEventDeadLettered, map[string]any{engine.LogKeySubscription: psqueue.SubEventsDead, engine.LogKeyOutcome: "bad_message"})
	if l := b.one(t, engine.LogEventTaskFinished, map[string]any{engine.LogKeyTaskID: "a"}); l[engine.LogKeyState] != "failed" {
		t.Fatalf("task_finished = %v; want failed", l)
	}
	// Acknowledged: the next tick finds nothing.
	if rep := b.tick(t); rep.DeadLettered != 0 {
		t.Fatalf("second tick handled %d dead letters; want 0 (the first acknowledged them)", rep.DeadLettered)
	}
	if n := len(b.logs.events(engine.LogEventDeadLettered, nil)); n != 3 {
		t.Fatalf("%d dead_lettered lines; want 3", n)
	}
	if got := b.eng.Stats.DeadLettered.Load(); got != 3 {
		t.Fatalf("Stats.DeadLettered = %d; want 3", got)
	}
}

func TestRecordsExpireAfterTheRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Retention: 48 * time.Hour})
	b.deploy(t, `id: kept
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
`)
	t0 := b.clock.Now()
	r := b.trigger(t, "kept")
	run, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(48 * time.Hour); !run.Rec.ExpireAt.Equal(want) {
		t.Fatalf("run expire_at %s; want %s", run.Rec.ExpireAt, want)
	}
	if got := b.ti(t, r, "a").ExpireAt; !got.Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("task instance expire_at %s; want %s", got, t0.Add(48*time.Hour))
	}
	b.clock.Add(time.Hour)
	ref := b.ref(t, r, "a")
	b.execute(t, r, "a")
	// The attempt lives on its instance's document, so it expires with it.
	if _, err := b.store.GetAttempt(b.ctx, ref); err != nil {
		t.Fatalf("the attempt is not on its instance: %v", err)
	}
	if got := b.ti(t, r, "a").ExpireAt; !got.Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("task instance expire_at after the attempt %s; want %s", got, t0.Add(48*time.Hour))
	}
	// The store refuses a record without expire_at: the TTL would delete it at once.
	err = b.store.CreateRun(b.ctx, &scheduler.Run{DagID: "kept", RunID: "manual__x", State: scheduler.RunQueued})
	if !errors.Is(err, fsstore.ErrNoExpiry) {
		t.Fatalf("creating a run without expire_at: %v; want ErrNoExpiry", err)
	}
	if d := engine.New(b.store, b.queue, engine.Config{}, nil, nil).Retention(); d != 90*24*time.Hour {
		t.Fatalf("default retention %s; want 90 days", d)
	}
}

func TestConfigFromEnvReadsRetention(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", 90 * 24 * time.Hour, false},
		{"30d", 30 * 24 * time.Hour, false},
		{"36h", 36 * time.Hour, false},
		{"0d", 0, true},
		{"-5h", 0, true},
		{"ninety", 0, true},
		{"1.5d", 0, true},
	} {
		cfg, err := engine.ConfigFromEnv(func(k string) string {
			if k == "UPDRAFT_RETENTION" {
				return c.env
			}
			return ""
		})
		if c.bad {
			if err == nil || !strings.Contains(err.Error(), "UPDRAFT_RETENTION") {
				t.Errorf("UPDRAFT_RETENTION=%q: %v; want an error naming the variable", c.env, err)
			}
			continue
		}
		if err != nil || cfg.Retention != c.want {
			t.Errorf("UPDRAFT_RETENTION=%q: %s, %v; want %s", c.env, cfg.Retention, err, c.want)
		}
	}
}

func TestCleanRunsDeletesOldFinishedRunsWithTheirChildren(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: old
owner: owner@example.com
tasks:
  - {id: a, type: test.fail, retries: 1, retry_delay: 0s}
  - {id: b, type: noop, needs: [a], trigger_rule: all_done}
`)
	b.deploy(t, `id: other
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
`)
	at := func(day int) time.Time { return time.Date(2025, 1, day, 0, 0, 0, 0, time.UTC) }
	runAt := func(dagID string, day int, finish bool) *scheduler.Run {
		r, err := b.eng.Trigger(b.ctx, dagID, nil, at(day))
		if err != nil {
			t.Fatal(err)
		}
		for finish && !b.runState(t, r).Finished() {
			b.execute(t, r, "a")
		}
		return r
	}
	old1, old2, oldOther := runAt("old", 1, true), runAt("old", 2, true), runAt("other", 2, true)
	unfinished := runAt("old", 3, false)
	newer := runAt("old", 8, true)

	// Dry run: counted, nothing deleted. Each old run of "old" has 2 instances, 2 attempts.
	rep, err := b.eng.CleanRuns(b.ctx, at(5), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 3 || rep.TaskInstances != 5 || rep.Attempts != 5 || rep.Unfinished != 1 || !rep.DryRun {
		t.Fatalf("dry run: %+v; want 3 runs, 5 instances, 5 attempts, 1 unfinished", rep)
	}
	for _, r := range []*scheduler.Run{old1, old2, oldOther, unfinished, newer} {
		if _, err := b.store.GetRun(b.ctx, r.DagID, r.RunID); err != nil {
			t.Fatalf("dry run deleted %s: %v", r.Key(), err)
		}
	}

	rep, err = b.eng.CleanRuns(b.ctx, at(5), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 3 || rep.TaskInstances != 5 || rep.Attempts != 5 || rep.Unfinished != 1 ||
		len(rep.Skipped) != 1 || rep.Skipped[0] != "old/"+unfinished.RunID {
		t.Fatalf("clean: %+v; want 3 runs, 5 instances, 5 attempts deleted and the unfinished run kept", rep)
	}
	for _, r := range []*scheduler.Run{old1, old2, oldOther} {
		if _, err := b.store.GetRun(b.ctx, r.DagID, r.RunID); !errors.Is(err, fsstore.ErrNotFound) {
			t.Fatalf("run %s: %v; want deleted", r.Key(), err)
		}
		if tis, _ := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID); len(tis) != 0 {
			t.Fatalf("run %s keeps %d task instances", r.Key(), len(tis))
		}
		if as, _ := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, "a"); len(as) != 0 {
			t.Fatalf("run %s keeps %d attempts", r.Key(), len(as))
		}
	}
	for _, r := range []*scheduler.Run{unfinished, newer} {
		want := 2
		if r == unfinished {
			want = 1 // a is queued; b has not left `none`, so it has no document yet
		}
		tis, as, err := b.store.CountRunChildren(b.ctx, r.DagID, r.RunID)
		if err != nil || tis != want {
			t.Fatalf("kept run %s: %d instances (%v); want its %d", r.Key(), tis, err, want)
		}
		if r == newer && as != 2 {
			t.Fatalf("kept run %s: %d attempts; want its 2", r.Key(), as)
		}
	}
	if rep, err := b.eng.CleanRuns(b.ctx, at(5), false, nil); err != nil || rep.Runs != 0 || rep.Unfinished != 1 {
		t.Fatalf("second clean: %+v, %v; want nothing left but the unfinished run", rep, err)
	}
	if _, err := b.eng.CleanRuns(b.ctx, b.clock.Now().Add(time.Hour), true, nil); err == nil {
		t.Fatal("a date in the future was accepted")
	}
}
