package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/scheduler"
)

func failingDAG(id, owner, on string, retries int) string {
	return fmt.Sprintf(`id: %s
owner: %s
timezone: Asia/Seoul
alerts:
  slack: {channel: "#data-alerts", on: [%s]}
tasks:
  - id: load
    type: test.fail
    retries: %d
    retry_delay: 0s
`, id, owner, on, retries)
}

// A task that fails three times posts one message: the parent (its first try's retry), then
// the second retry and the final failure as replies in its thread, each updating the parent,
// which ends showing the failed run.
func TestRetriesAndFinalFailureThreadUnderOneParent(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("flaky", kimEmail, "failure, retry", 2))
	r := b.trigger(t, "flaky")
	for range 3 { // each event handled as it comes
		b.execute(t, r, "load")
		b.deliver(t, b.events.take())
	}
	if s := b.runState(t, r); s != scheduler.RunFailed {
		t.Fatalf("run is %s, want failed", s)
	}

	ms := b.posted("#data-alerts")
	ps := parents(ms)
	if len(ps) != 1 {
		t.Fatalf("%d parent messages, want 1: %+v", len(ps), ms)
	}
	p := ps[0]
	rs := replies(ms, p.TS)
	if len(rs) != 2 || len(ms) != 3 {
		t.Fatalf("%d replies of %d messages, want 2 of 3", len(rs), len(ms))
	}
	if p.Updated != 2 {
		t.Errorf("parent updated %d times, want 2 (once per reply)", p.Updated)
	}
	if c := color(p); c != alerts.ColorFailed {
		t.Errorf("parent colour %s, want %s (the run failed)", c, alerts.ColorFailed)
	}
	pc := content(p)
	for _, want := range []string{"flaky* run failed", "<@" + kimID + ">", "2025-01-10 09:30 KST", "Task failed: `load` (try 3 of 3)",
		"Task up for retry: `load` (try 1 of 3)", "partner API returned 503 (try 1)"} {
		if !strings.Contains(pc, want) {
			t.Errorf("parent lacks %q: %s", want, pc)
		}
	}
	retry, final := content(rs[0]), content(rs[1])
	if !strings.Contains(retry, "Task up for retry") || !strings.Contains(retry, "2 of 3") || color(rs[0]) != alerts.ColorRetry {
		t.Errorf("first reply is not the second try's retry: %s", retry)
	}
	if strings.Contains(retry, alerts.RetryActionID) {
		t.Errorf("a retry alert has a Retry button; only a final failure should: %s", retry)
	}
	if !strings.Contains(final, "Task failed") || !strings.Contains(final, "3 of 3") || color(rs[1]) != alerts.ColorFailed {
		t.Errorf("second reply is not the final failure: %s", final)
	}
	for _, want := range []string{"partner API returned 503 (try 3)", uiURL + "/dags/flaky/runs/" + r.RunID + "/tasks/load?try=3"} {
		if !strings.Contains(final, want) {
			t.Errorf("final failure lacks %q: %s", want, final)
		}
	}
	// The Retry button: the contract with the actions endpoint.
	btn := findButton(t, rs[1], alerts.RetryActionID)
	var v map[string]string
	if err := json.Unmarshal([]byte(btn["value"].(string)), &v); err != nil {
		t.Fatalf("Retry value %v is not JSON: %v", btn["value"], err)
	}
	if want := map[string]string{"dag_id": "flaky", "run_id": r.RunID, "task_id": "load"}; fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("Retry value = %v, want exactly %v", v, want)
	}
}

// findButton returns the button with an action_id among a message's blocks.
func findButton(t *testing.T, m any, actionID string) map[string]any {
	t.Helper()
	b, _ := json.Marshal(m)
	var found map[string]any
	var walk func(any)
	walk = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			if v["type"] == "button" && v["action_id"] == actionID {
				found = v
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	var x any
	_ = json.Unmarshal(b, &x)
	walk(x)
	if found == nil {
		t.Fatalf("no button %s in %s", actionID, b)
	}
	return found
}

// `on: [failure]` says nothing about retries, and says the final failure.
func TestFailureMeansRetriesExhausted(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("once_more", kimEmail, "failure", 1))
	r := b.trigger(t, "once_more")
	b.execute(t, r, "load")
	b.deliver(t, b.events.take())
	if ms := b.posted("#data-alerts"); len(ms) != 0 {
		t.Fatalf("a retry posted %d messages with on: [failure]; want none: %+v", len(ms), ms)
	}
	b.execute(t, r, "load")
	b.deliver(t, b.events.take())
	ms := b.posted("#data-alerts")
	if len(ms) != 1 || !strings.Contains(content(ms[0]), "Task failed") || !strings.Contains(content(ms[0]), "try 2 of 2") {
		t.Fatalf("after the final failure: %+v; want one message about the failed try 2 of 2", ms)
	}
	findButton(t, ms[0], alerts.RetryActionID)
}

// Task-level success alerts a task's success in its own channel; DAG-level success is the
// run's, once, and not every task's.
func TestSuccessAtTaskAndDAGLevel(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: tidy
owner: kim@example.com
alerts:
  slack: {channel: "#runs", on: [success, failure]}
tasks:
  - id: extract
    type: test.ok
    alerts:
      slack: {channel: "#extract-team", on: [success]}
  - id: load
    type: test.ok
    needs: [extract]
`)
	r := b.trigger(t, "tidy")
	b.execute(t, r, "extract")
	b.execute(t, r, "load")
	if s := b.runState(t, r); s != scheduler.RunSuccess {
		t.Fatalf("run is %s, want success", s)
	}
	b.deliver(t, b.events.take())

	team := b.posted("#extract-team")
	if len(team) != 1 || !strings.Contains(content(team[0]), "extract") || color(team[0]) != alerts.ColorSuccess {
		t.Fatalf("#extract-team: %+v; want one green message about extract", team)
	}
	runs := b.posted("#runs")
	if len(runs) != 1 {
		t.Fatalf("#runs has %d messages, want 1 (the run's success, not each task's): %+v", len(runs), runs)
	}
	if c := content(runs[0]); !strings.Contains(c, "tidy* run succeeded") || color(runs[0]) != alerts.ColorSuccess {
		t.Errorf("#runs message is not the run's success: %s", c)
	}
	if c := content(runs[0]); strings.Contains(c, alerts.RetryActionID) {
		t.Errorf("a success has a Retry button: %s", c)
	}
}

// A DAG failing on every run posts one message per run, not one per try or per event.
func TestOneMessagePerRun(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("every_five", kimEmail, "failure, retry", 1))
	var runIDs []string
	for range 3 {
		r := b.trigger(t, "every_five")
		b.execute(t, r, "load")
		b.execute(t, r, "load")
		runIDs = append(runIDs, r.RunID)
		b.clock.Add(5 * time.Minute)
	}
	b.deliver(t, b.events.take())
	ms := b.posted("#data-alerts")
	ps := parents(ms)
	if len(ps) != 3 {
		t.Fatalf("%d parent messages for 3 runs, want 3", len(ps))
	}
	for i, p := range ps {
		if !strings.Contains(content(p), runIDs[i]) {
			t.Errorf("parent %d is not about run %s: %s", i, runIDs[i], content(p))
		}
		if rs := replies(ms, p.TS); len(rs) != 1 {
			t.Errorf("run %s: %d replies, want 1 (the final failure after the retry)", runIDs[i], len(rs))
		}
	}
}

// The same event delivered again, and concurrently to two alerters (two instances of the
// service), posts once.
func TestDuplicatedEventsPostOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("dupes", kimEmail, "failure", 0))
	r := b.trigger(t, "dupes")
	b.execute(t, r, "load")
	evs := b.events.take()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	other := alerts.New(b.store, b.eng, b.tokens, alerts.Config{SlackAPIURL: b.slack.URL, Now: b.clock.Now, PollEvery: pollEvery}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := b.alerter
			if i%2 == 1 {
				a = other
			}
			errs <- a.HandleEvent(b.ctx, evs[0])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b.deliver(t, evs) // and once more, later
	if ms := b.posted("#data-alerts"); len(ms) != 1 {
		t.Fatalf("%d messages for one event delivered 9 times, want 1: %+v", len(ms), ms)
	}
	if n := len(b.calls("chat.postMessage")); n != 1 {
		t.Errorf("%d chat.postMessage calls, want 1", n)
	}
	if d := b.alerter.Stats.Duplicates.Load() + other.Stats.Duplicates.Load(); d != 8 {
		t.Errorf("%d duplicates counted, want 8", d)
	}
}

// Two tasks of one run failing at once, their events handled concurrently: one parent, one
// reply, never two parents.
func TestConcurrentEventsOfOneRunShareOneParent(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: twins
owner: kim@example.com
alerts:
  slack: {channel: "#data-alerts", on: [failure]}
tasks:
  - {id: left, type: test.fail}
  - {id: right, type: test.fail}
`)
	r := b.trigger(t, "twins")
	b.execute(t, r, "left")
	b.execute(t, r, "right")
	evs := b.events.take()
	var wg sync.WaitGroup
	for _, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.alerter.HandleEvent(b.ctx, ev); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ms := b.posted("#data-alerts")
	ps := parents(ms)
	if len(ps) != 1 || len(ms) != 2 || len(replies(ms, ps[0].TS)) != 1 {
		t.Fatalf("%d messages, %d parents; want one parent and one reply: %+v", len(ms), len(ps), ms)
	}
	if ps[0].Updated != 1 || color(ps[0]) != alerts.ColorFailed {
		t.Errorf("parent updated %d times (want 1), colour %s (want failed)", ps[0].Updated, color(ps[0]))
	}
}

// The owner is mentioned by Slack user id, looked up once; an email Slack does not know is
// shown as it is, and that miss is cached too.
func TestOwnerMentionCachedAndEmailWhenUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("kims", kimEmail, "failure", 0))
	b.deploy(t, failingDAG("strangers", "nobody@example.com", "failure", 0))
	for range 2 {
		for _, id := range []string{"kims", "strangers"} {
			r := b.trigger(t, id)
			b.execute(t, r, "load")
		}
		b.clock.Add(time.Minute)
	}
	b.deliver(t, b.events.take())
	ms := b.posted("#data-alerts")
	if len(ms) != 4 {
		t.Fatalf("%d messages, want 4", len(ms))
	}
	for _, m := range ms {
		c := content(m)
		switch {
		case strings.Contains(c, "kims"):
			if !strings.Contains(m.Text, "<@"+kimID+">") {
				t.Errorf("kim is not mentioned: %s", m.Text)
			}
		case strings.Contains(c, "strangers"):
			if !strings.Contains(m.Text, "nobody@example.com") || strings.Contains(m.Text, "<@") {
				t.Errorf("an unknown owner should be named by email, not mentioned: %s", m.Text)
			}
		}
	}
	lookups := map[string]int{}
	for _, c := range b.calls("users.lookupByEmail") {
		lookups[fmt.Sprint(c.Params["email"])]++
	}
	if lookups[kimEmail] != 1 || lookups["nobody@example.com"] != 1 {
		t.Errorf("users.lookupByEmail calls = %v; want one per owner (hit and miss cached)", lookups)
	}
}

// A 429 is waited out for its Retry-After, and the alert posted.
func TestRateLimitedThenPosted(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("busy", kimEmail, "failure", 0))
	r := b.trigger(t, "busy")
	b.execute(t, r, "load")
	b.slack.FailNext("chat.postMessage", http.StatusTooManyRequests, time.Second)
	b.deliver(t, b.events.take())
	var statuses []int
	for _, c := range b.calls("chat.postMessage") {
		statuses = append(statuses, c.Status)
	}
	if !slices.Equal(statuses, []int{429, 200}) {
		t.Fatalf("chat.postMessage answered %v, want [429 200]", statuses)
	}
	if w := b.sleeper.Waits(); !slices.Equal(w, []time.Duration{time.Second}) {
		t.Errorf("waits = %v, want [1s] (the Retry-After)", w)
	}
	if ms := b.posted("#data-alerts"); len(ms) != 1 {
		t.Errorf("%d messages, want 1", len(ms))
	}
}

// Slack down: the alert is retried with backoff, then given up on and logged; the handler
// does not fail (the event is acknowledged), the run is what the engine made it, and the
// run's next alert, once Slack is back, starts its thread normally.
func TestSlackDownIsLoggedAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, failingDAG("dark", kimEmail, "failure, retry", 1))
	r := b.trigger(t, "dark")
	b.execute(t, r, "load")
	b.slack.SetDown(true)
	b.deliver(t, b.events.take()) // HandleEvent returns nil
	if n := b.alerter.Stats.Failed.Load(); n != 1 {
		t.Fatalf("%d alerts failed, want 1", n)
	}
	if !strings.Contains(b.log.String(), "alert failed") {
		t.Errorf("the failure is not logged:\n%s", b.log.String())
	}
	if w := b.sleeper.Waits(); !slices.Equal(w, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}) {
		t.Errorf("waits = %v, want exponential backoff [1s 2s 4s 8s] over 5 tries", w)
	}
	if n := len(b.calls("chat.postMessage")); n != 5 {
		t.Errorf("%d tries, want 5", n)
	}
	// The task went on as if Slack did not exist: queued again for its retry.
	ti, err := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "load")
	if err != nil {
		t.Fatal(err)
	}
	if ti.Rec.State != scheduler.TaskQueued || ti.Rec.TryNumber != 2 {
		t.Fatalf("task is %s at try %d; want queued for try 2", ti.Rec.State, ti.Rec.TryNumber)
	}
	b.slack.SetDown(false)
	b.execute(t, r, "load")
	b.deliver(t, b.events.take())
	ms := b.posted("#data-alerts")
	if len(ms) != 1 || !strings.Contains(content(ms[0]), "Task failed") || ms[0].ThreadTS != "" {
		t.Fatalf("after Slack came back: %+v; want the final failure as the run's parent", ms)
	}
}

// A secret a task quoted in its error was masked by the worker, and stays masked in the alert.
func TestMaskedSecretsStayMasked(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: leaky
owner: kim@example.com
alerts:
  slack: {channel: "#data-alerts", on: [failure]}
tasks:
  - {id: call_api, type: test.leak}
`)
	r := b.trigger(t, "leaky")
	b.execute(t, r, "call_api")
	b.deliver(t, b.events.take())
	ms := b.posted("#data-alerts")
	if len(ms) != 1 || !strings.Contains(content(ms[0]), "key=***: 401 Unauthorized") {
		t.Fatalf("messages %+v; want one showing the masked error", ms)
	}
	all, _ := json.Marshal(b.slack.Calls())
	for _, secret := range []string{apiSecret, botToken} {
		if strings.Contains(string(all), secret) {
			t.Errorf("Slack received the secret %q", secret)
		}
	}
}

// End to end through Pub/Sub: events reach the alerter on its own subscription; the channel
// is a template reading a variable, with a default.
func TestEndToEndThroughTheAlertsSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: routed
owner: kim@example.com
alerts:
  slack: {channel: '{{ var "slack-channel-prod" "#test" }}', on: [failure]}
tasks:
  - {id: load, type: test.fail}
`)
	ctx, cancel := context.WithCancel(b.ctx)
	handled := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.queue.Receive(ctx, psqueue.SubAlerts, 4, func(ctx context.Context, data []byte) error {
			err := b.alerter.HandleEvent(ctx, data)
			handled <- string(data)
			return err
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	wait := func(runID string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case ev := <-handled:
				if strings.Contains(ev, runID) {
					return
				}
			case <-timeout:
				t.Fatalf("the alerter did not get the event of %s", runID)
			}
		}
	}

	r1 := b.trigger(t, "routed")
	b.execute(t, r1, "load")
	wait(r1.RunID)
	if ms := b.posted("#test"); len(ms) != 1 {
		t.Fatalf("#test has %d messages, want 1 (the variable's default)", len(ms))
	}
	if err := b.eng.SetVariable(b.ctx, "slack-channel-prod", "#prod-alerts"); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(time.Minute)
	r2 := b.trigger(t, "routed")
	b.execute(t, r2, "load")
	wait(r2.RunID)
	if ms := b.posted("#prod-alerts"); len(ms) != 1 || !strings.Contains(content(ms[0]), r2.RunID) {
		t.Fatalf("#prod-alerts: %+v; want run %s's failure", ms, r2.RunID)
	}
	if ms := b.posted("#test"); len(ms) != 1 {
		t.Errorf("#test has %d messages, want still 1", len(ms))
	}
}

// Events that say nothing (running, queued, up_for_reschedule) cost no read and post
// nothing; a malformed one is a bad message.
func TestQuietAndBadEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	for _, s := range []scheduler.TaskState{scheduler.TaskRunning, scheduler.TaskQueued, scheduler.TaskUpForReschedule} {
		ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: scheduler.AttemptRef{DagID: "nope", RunID: "manual__x", TaskID: "t", TryNumber: 1, AttemptID: "a"}, State: s})
		if err := b.alerter.HandleEvent(b.ctx, ev); err != nil {
			t.Errorf("%s event: %v", s, err)
		}
	}
	if reads, _ := b.store.Counts(); reads != 0 {
		t.Errorf("quiet events read %d documents, want 0", reads)
	}
	if err := b.alerter.HandleEvent(b.ctx, []byte("{")); !errors.Is(err, scheduler.ErrBadMessage) {
		t.Errorf("malformed event: %v; want a bad message", err)
	}
	ev, _ := json.Marshal(scheduler.TaskEvent{AttemptRef: scheduler.AttemptRef{DagID: "nope", RunID: "manual__x", TaskID: "t", TryNumber: 1, AttemptID: "a"}, State: scheduler.TaskFailed})
	if err := b.alerter.HandleEvent(b.ctx, ev); !errors.Is(err, scheduler.ErrBadMessage) {
		t.Errorf("event of an unknown run: %v; want a bad message", err)
	}
}

// The events of a DAG without alerts name the run's DAG version, so the alerter drops them
// without reading the run (one read per task fewer).
func TestEventsOfADAGWithoutAlertsReadNoRun(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: quiet
owner: kim@example.com
tasks:
  - id: extract
    type: test.ok
  - id: load
    type: test.ok
    needs: [extract]
`)
	r := b.trigger(t, "quiet")
	b.execute(t, r, "extract")
	b.execute(t, r, "load")
	events := b.events.take()
	if len(events) < 2 {
		b.deliver(t, events)
		t.Fatalf("%d events recorded; want one per task", len(events))
	}
	b.store.TraceOps()
	b.deliver(t, events)
	for op, n := range b.store.OpCounts() {
		if strings.Contains(op, "alerts.") {
			t.Errorf("the alerter made %d operations (%s) for a DAG without alerts; want none", n, op)
		}
	}
}
