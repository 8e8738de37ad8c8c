package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Attempts on their task instance: every write of an attempt (claim, renewal, result, the
// tick's lost verdict) is fenced by the instance's update time. These tests attack that
// fencing with late workers, clears and ticks racing a live worker.

// attemptsOf lists a task's attempts (oldest first) as "try:state" for messages and checks.
func (b *bundle) attemptsOf(t *testing.T, r *scheduler.Run, task string) ([]scheduler.Attempt, []string) {
	t.Helper()
	as, err := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatal(err)
	}
	out, desc := make([]scheduler.Attempt, len(as)), make([]string, len(as))
	for i, a := range as {
		out[i], desc[i] = a.Rec, fmt.Sprintf("%d:%s", a.Rec.TryNumber, a.Rec.State)
	}
	return out, desc
}

// A worker whose task was cleared while it ran reports its result before the new attempt is
// claimed: the result does not stand (ErrStale), the instance stays queued with the new
// attempt, nothing downstream is queued, and the new attempt is then claimed and stands.
func TestLateResultAfterAClearBeforeTheNewClaimDoesNotStand(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	ref1 := b.ref(t, r, "a")
	c1, err := b.eng.Claim(b.ctx, ref1, engine.Worker{Name: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	ref2 := b.ref(t, r, "a")
	if ref2.AttemptID == ref1.AttemptID || ref2.TryNumber != 2 {
		t.Fatalf("after the clear: attempt %s try %d; want a new attempt, try 2", ref2.AttemptID, ref2.TryNumber)
	}
	if err := c1.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result of the cleared attempt: %v; want ErrStale", err)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskQueued || ti.AttemptID != ref2.AttemptID {
		t.Fatalf("a is %s with attempt %s after the late result; want queued with %s", ti.State, ti.AttemptID, ref2.AttemptID)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskNone {
		t.Fatalf("b is %s after the cleared attempt's late result; want none (never queued by it)", s)
	}
	// The tick, looking at whatever the late write left due, changes nothing.
	b.clock.Add(2 * time.Minute)
	if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 0 || len(rep.Errors) > 0 {
		t.Fatalf("tick: lost %d, errors %v (%v); want none", rep.LostWorkers, rep.Errors, err)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskQueued || ti.AttemptID != ref2.AttemptID {
		t.Fatalf("a is %s with attempt %s after the tick; want queued with %s", ti.State, ti.AttemptID, ref2.AttemptID)
	}
	c2, err := b.eng.Claim(b.ctx, ref2, engine.Worker{Name: "w2"})
	if err != nil {
		t.Fatalf("claim of the new attempt: %v", err)
	}
	if err := c1.Renew(b.ctx); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("renewal of the cleared attempt: %v; want ErrStale", err)
	}
	if err := c2.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatalf("result of the new attempt: %v", err)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskSuccess || ti.AttemptID != ref2.AttemptID || ti.TryNumber != 2 {
		t.Fatalf("a is %s, attempt %s, try %d; want success on try 2", ti.State, ti.AttemptID, ti.TryNumber)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskQueued {
		t.Fatalf("b is %s; want queued by the new attempt", s)
	}
	as, desc := b.attemptsOf(t, r, "a")
	if len(as) != 2 || as[0].ID != ref1.AttemptID || as[1].ID != ref2.AttemptID ||
		as[0].State == scheduler.AttemptRunning || as[0].EndedAt == nil || as[1].State != scheduler.AttemptSuccess {
		t.Fatalf("attempts of a %v; want the cleared one ended, then the new one succeeded", desc)
	}
}

// The same late result once the new attempt is claimed and running: refused, and the
// instance's latest attempt (the new one, its worker and lease) is left exactly as it was.
func TestLateResultAfterAClearLeavesTheRunningNewAttemptAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	c1, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	ref2 := b.ref(t, r, "a")
	c2, err := b.eng.Claim(b.ctx, ref2, engine.Worker{Name: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []engine.Result{{State: scheduler.AttemptSuccess}, {State: scheduler.AttemptFailed, Error: "late"}} {
		if err := c1.Finish(b.ctx, res); !errors.Is(err, engine.ErrStale) {
			t.Fatalf("late %s of the cleared attempt: %v; want ErrStale", res.State, err)
		}
	}
	after, err := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !after.UpdateTime.Equal(before.UpdateTime) {
		t.Fatalf("the late results wrote the instance (update time %s → %s): %+v", before.UpdateTime, after.UpdateTime, after.Rec.Attempt)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskNone {
		t.Fatalf("b is %s; want none", s)
	}
	if err := c2.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatalf("result of the new attempt: %v", err)
	}
	as, desc := b.attemptsOf(t, r, "a")
	if len(as) != 2 || as[0].State != scheduler.AttemptFailed || as[1].State != scheduler.AttemptSuccess || as[1].Worker != "w2" {
		t.Fatalf("attempts of a %v; want the cleared one failed (superseded), then w2's success", desc)
	}
}

// A worker declared lost, coming back after the retry was claimed: its result and its
// renewal are refused and the retry's attempt on the instance is untouched; the history
// shows the lost try, then the retry.
func TestLostWorkerComingBackLeavesTheRetryAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	b.eng.SetExecutor(executorSaying(false))
	b.deploy(t, oneTask)
	r := b.trigger(t, "one")
	ref1 := b.ref(t, r, "a")
	c1, err := b.eng.Claim(b.ctx, ref1, engine.Worker{Name: "w1", ExecutorRef: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(3 * time.Second)
	if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: lost %d (%v)", rep.LostWorkers, err)
	}
	ref2 := b.ref(t, r, "a")
	c2, err := b.eng.Claim(b.ctx, ref2, engine.Worker{Name: "w2", ExecutorRef: "gone-too"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "a")
	if err := c1.Renew(b.ctx); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("renewal of the lost attempt: %v; want ErrStale", err)
	}
	if err := c1.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result of the lost attempt: %v; want ErrStale", err)
	}
	after, _ := b.store.GetTaskInstance(b.ctx, r.DagID, r.RunID, "a")
	if !after.UpdateTime.Equal(before.UpdateTime) || after.Rec.Attempt == nil || after.Rec.Attempt.ID != ref2.AttemptID ||
		after.Rec.Attempt.State != scheduler.AttemptRunning {
		t.Fatalf("the lost worker's late writes changed the instance: %+v", after.Rec.Attempt)
	}
	if err := c2.Renew(b.ctx); err != nil {
		t.Fatalf("the retry's renewal after the late writes: %v", err)
	}
	if err := c2.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	as, desc := b.attemptsOf(t, r, "a")
	if len(as) != 2 || as[0].ID != ref1.AttemptID || as[0].State != scheduler.AttemptLost || as[0].TryNumber != 1 ||
		as[1].ID != ref2.AttemptID || as[1].State != scheduler.AttemptSuccess || as[1].TryNumber != 2 {
		t.Fatalf("attempts of a %v; want 1:lost then 2:success", desc)
	}
}

// A long task renews its lease while ticks run at the same time, each finding the lease
// lapsed on the fake clock and the worker alive, so both write the instance over and over:
// no renewal is mistaken for stale, no tick declares it lost, and its result stands once,
// queueing its downstream once.
func TestRenewalsRacingTicksKeepTheAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	b.eng.SetExecutor(executorSaying(true))
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w", ExecutorRef: "alive"})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 15
	var wg sync.WaitGroup
	var lost int
	var tickErrs []string
	wg.Go(func() {
		for range rounds {
			b.clock.Add(3 * time.Second) // every tick finds the lease lapsed
			rep, err := b.eng.Tick(b.ctx)
			if err != nil {
				tickErrs = append(tickErrs, err.Error())
			}
			lost += rep.LostWorkers
			tickErrs = append(tickErrs, rep.Errors...)
		}
	})
	var renewErrs []error
	wg.Go(func() {
		for range rounds {
			if err := claim.Renew(b.ctx); err != nil {
				renewErrs = append(renewErrs, err)
			}
		}
	})
	wg.Wait()
	if lost != 0 || len(tickErrs) > 0 {
		t.Fatalf("ticks racing renewals: lost %d, errors %v", lost, tickErrs)
	}
	for _, err := range renewErrs {
		if errors.Is(err, engine.ErrStale) {
			t.Fatalf("a renewal racing the tick was told stale: %v", err)
		}
		t.Logf("renewal error (not stale, retried at the next renewal): %v", err)
	}
	// The result, racing one more tick.
	b.clock.Add(3 * time.Second)
	var finishErr error
	wg.Go(func() { finishErr = claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}) })
	wg.Go(func() {
		rep, _ := b.eng.Tick(b.ctx)
		lost += rep.LostWorkers
	})
	wg.Wait()
	if finishErr != nil || lost != 0 {
		t.Fatalf("result racing a tick: %v, lost %d; want recorded, none lost", finishErr, lost)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s; want success", s)
	}
	b1 := b.ti(t, r, "b")
	if b1.State != scheduler.TaskQueued || b1.TryNumber != 1 {
		t.Fatalf("b is %s try %d; want queued once", b1.State, b1.TryNumber)
	}
	if _, desc := b.attemptsOf(t, r, "a"); len(desc) != 1 || desc[0] != "1:success" {
		t.Fatalf("attempts of a %v; want one, success", desc)
	}
}

// gateExecutor holds the tick between its read of an attempt with a lapsed lease and its
// verdict: Alive reports the question on asked and answers what the test sends on answer.
type gateExecutor struct {
	asked  chan string
	answer chan bool
}

func (g gateExecutor) Alive(ctx context.Context, ref string) (bool, error) {
	g.asked <- ref
	return <-g.answer, nil
}
func (gateExecutor) Cancel(context.Context, string) error { return nil }

// The tick reads an attempt whose lease lapsed, and while it asks the executor about the
// worker, the worker comes back: once with a renewal, once with its result. The executor
// then says the execution is gone, yet the tick's verdict was taken from an instance that
// has changed since: it must not land. The renewal keeps the attempt its worker's, and the
// result stands, once.
func TestLostVerdictTakenBeforeAWorkersWriteDoesNotLand(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	gate := gateExecutor{asked: make(chan string), answer: make(chan bool)}
	b.eng.SetExecutor(gate)
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w", ExecutorRef: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	tickWith := func(worker func() error) (engine.TickReport, error) {
		t.Helper()
		b.clock.Add(3 * time.Second) // the lease lapses
		done := make(chan engine.TickReport)
		go func() { rep, _ := b.eng.Tick(b.ctx); done <- rep }()
		if ref := <-gate.asked; ref != "slow" {
			t.Errorf("the tick asked about %q", ref)
		}
		err := worker()
		gate.answer <- false // "gone": the verdict the tick would write
		return <-done, err
	}
	rep, err := tickWith(func() error { return claim.Renew(b.ctx) })
	if err != nil {
		t.Fatalf("renewal while the tick asked about the worker: %v", err)
	}
	if rep.LostWorkers != 0 {
		t.Fatalf("the tick declared the worker lost on a lease it had just renewed")
	}
	if a := b.ti(t, r, "a").Attempt; a == nil || a.State != scheduler.AttemptRunning {
		t.Fatalf("after the renewal the attempt is %+v; want running", a)
	}
	rep, err = tickWith(func() error { return claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}) })
	if err != nil {
		t.Fatalf("result while the tick asked about the worker: %v", err)
	}
	if rep.LostWorkers != 0 {
		t.Fatalf("the tick declared lost a worker that had recorded its result")
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskSuccess || ti.TryNumber != 1 {
		t.Fatalf("a is %s try %d; want success on try 1", ti.State, ti.TryNumber)
	}
	if ti := b.ti(t, r, "b"); ti.State != scheduler.TaskQueued || ti.TryNumber != 1 {
		t.Fatalf("b is %s try %d; want queued once", ti.State, ti.TryNumber)
	}
	if _, desc := b.attemptsOf(t, r, "a"); len(desc) != 1 || desc[0] != "1:success" {
		t.Fatalf("attempts of a %v; want one, success", desc)
	}
}

// cancelRecorder is an executor whose every worker is alive, recording what it is asked to
// cancel.
type cancelRecorder struct {
	mu        sync.Mutex
	cancelled []string
}

func (*cancelRecorder) Alive(context.Context, string) (bool, error) { return true, nil }
func (x *cancelRecorder) Cancel(_ context.Context, ref string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cancelled = append(x.cancelled, ref)
	return nil
}

// Clearing a running task cancels its attempt's execution at once, rather than leaving the
// command to run beside the new try until its worker's next renewal; clearing a queued one
// has no execution to cancel.
func TestClearCancelsTheRunningAttemptsExecution(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	x := &cancelRecorder{}
	b.eng.SetExecutor(x)
	b.deploy(t, chain)
	r := b.trigger(t, "chain")
	if _, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w1", ExecutorRef: "exec-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil { // queued now
		t.Fatal(err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.cancelled) != 1 || x.cancelled[0] != "exec-1" {
		t.Fatalf("cancelled %v; want the running attempt's execution exec-1, once", x.cancelled)
	}
}

// Two ticks at once find the same lapsed lease and both ask the executor before either
// writes: one lost verdict lands, the other finds the instance changed. The retry is queued
// once (try 2, not 3) and the history holds one lost attempt.
func TestTwoTicksDeclareALostWorkerOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	gate := gateExecutor{asked: make(chan string), answer: make(chan bool)}
	b.eng.SetExecutor(gate)
	b.deploy(t, `id: one
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 3, retry_delay: 0s}
`)
	r := b.trigger(t, "one")
	if _, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w", ExecutorRef: "dead"}); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(3 * time.Second)
	reps := make(chan engine.TickReport, 2)
	for range 2 {
		go func() { rep, _ := b.eng.Tick(b.ctx); reps <- rep }()
	}
	<-gate.asked
	<-gate.asked // both ticks read the attempt running and asked
	gate.answer <- false
	gate.answer <- false
	lost := 0
	for range 2 {
		lost += (<-reps).LostWorkers
	}
	if lost != 1 {
		t.Fatalf("two ticks declared %d lost verdicts; want 1", lost)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskQueued || ti.TryNumber != 2 {
		t.Fatalf("a is %s try %d; want the retry queued once (try 2)", ti.State, ti.TryNumber)
	}
	if _, desc := b.attemptsOf(t, r, "a"); len(desc) != 1 || desc[0] != "1:lost" {
		t.Fatalf("attempts %v; want one, lost", desc)
	}
}

// A clear lands while the tick asks the executor about a lapsed lease: the verdict, taken
// from the instance before the clear, must not land on the cleared instance; the new try
// stays queued as the clear left it (try 2, no retry counted on top) and is claimed and
// stands.
func TestLostVerdictRacingAClearLeavesTheNewTryAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	gate := gateExecutor{asked: make(chan string), answer: make(chan bool)}
	b.eng.SetExecutor(gate)
	b.deploy(t, `id: one
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 3, retry_delay: 0s}
`)
	r := b.trigger(t, "one")
	if _, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w", ExecutorRef: "dead"}); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(3 * time.Second)
	done := make(chan engine.TickReport)
	go func() { rep, _ := b.eng.Tick(b.ctx); done <- rep }()
	<-gate.asked
	// The clear asks the executor to cancel (gateExecutor.Cancel does nothing) and queues a new try.
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	ref2 := b.ref(t, r, "a")
	gate.answer <- false
	if rep := <-done; rep.LostWorkers != 0 {
		t.Fatalf("the verdict taken before the clear landed (%d lost)", rep.LostWorkers)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskQueued || ti.AttemptID != ref2.AttemptID || ti.TryNumber != 2 {
		t.Fatalf("a is %s with attempt %s try %d; want queued with the clear's attempt %s, try 2", ti.State, ti.AttemptID, ti.TryNumber, ref2.AttemptID)
	}
	// The next tick finds the cleared attempt's lease still lapsed and its worker gone: its
	// verdict may end that attempt, but not touch the new try.
	go func() { rep, _ := b.eng.Tick(b.ctx); done <- rep }()
	<-gate.asked
	gate.answer <- false
	<-done
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskQueued || ti.AttemptID != ref2.AttemptID || ti.TryNumber != 2 {
		t.Fatalf("after the next tick a is %s with attempt %s try %d; want queued with %s, try 2", ti.State, ti.AttemptID, ti.TryNumber, ref2.AttemptID)
	}
	c2, err := b.eng.Claim(b.ctx, ref2, engine.Worker{Name: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskSuccess || ti.TryNumber != 2 {
		t.Fatalf("a is %s try %d; want success on try 2", ti.State, ti.TryNumber)
	}
	if _, desc := b.attemptsOf(t, r, "a"); len(desc) != 2 || desc[1] != "2:success" || desc[0] == "1:running" {
		t.Fatalf("attempts %v; want the cleared try ended, then 2:success", desc)
	}
}

// A deferred task saves its job's reference on its instance before submitting the job. With
// the attempt on the instance, its renewals and the tick's look at a live worker write the
// instance too: neither may make the save say "cleared or marked" (the job would then not be
// submitted and the try would fail), while a real clear still must.
func TestSaveJobSurvivesRenewalsAndTheTickButNotAClear(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	b.eng.SetExecutor(executorSaying(true))
	b.deploy(t, oneTask)
	r := b.trigger(t, "one")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w", ExecutorRef: "alive"})
	if err != nil {
		t.Fatal(err)
	}
	job := func(name string) engine.JobRef {
		return engine.JobRef{Kind: engine.JobBigQuery, Name: name, Tag: ref.AttemptID, Try: ref.TryNumber}
	}
	// The lease lapses (a slow start) and the tick, finding the worker alive, writes the
	// instance: the save that follows is still this attempt's.
	b.clock.Add(3 * time.Second)
	if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 0 {
		t.Fatalf("tick: lost %d (%v)", rep.LostWorkers, err)
	}
	if err := claim.SaveJob(b.ctx, job("after-tick")); err != nil {
		t.Fatalf("save the job after the tick looked at the live worker: %v; want saved", err)
	}
	if j, ok := engine.ParseJobRef(b.ti(t, r, "a").Job); !ok || j.Name != "after-tick" {
		t.Fatalf("job on the instance: %+v; want after-tick", j)
	}
	// Saves racing renewals of the same attempt.
	for i := range 10 {
		var wg sync.WaitGroup
		var renewErr, saveErr error
		wg.Go(func() { renewErr = claim.Renew(b.ctx) })
		wg.Go(func() { saveErr = claim.SaveJob(b.ctx, job(fmt.Sprint("racing-", i))) })
		wg.Wait()
		if renewErr != nil || saveErr != nil {
			t.Fatalf("round %d: renewal %v, save %v; want both to go through", i, renewErr, saveErr)
		}
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := claim.SaveJob(b.ctx, job("after-clear")); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("save the job after a clear: %v; want ErrStale", err)
	}
}

// A worker records a failure another try cannot fix (a template error: Final) and dies
// before its follow-up: the tick, doing the follow-up from what the attempt holds, fails the
// task without a retry, as the worker would have.
func TestFinalFailureFollowedUpByTheTickIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{RepublishAfter: 30 * time.Second})
	b.deploy(t, `id: fin
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 3, retry_delay: 0s}
`)
	r := b.trigger(t, "fin")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.eng.RecordOnly(b.ctx, claim, engine.Result{State: scheduler.AttemptFailed, Error: "template: bad", Final: true}); err != nil {
		t.Fatal(err)
	}
	b.clock.Add(31 * time.Second)
	if rep := b.tick(t); rep.FollowedUp != 1 {
		t.Fatalf("tick followed up %d attempts; want 1", rep.FollowedUp)
	}
	if ti := b.ti(t, r, "a"); ti.State != scheduler.TaskFailed || ti.TryNumber != 1 {
		t.Fatalf("a is %s try %d after the tick's follow-up of a final failure; want failed on try 1, no retry", ti.State, ti.TryNumber)
	}
}
