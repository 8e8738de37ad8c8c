package scheduler

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 10, 0, 30, 0, 0, time.UTC)

func running(try, base int) TaskInstance {
	return TaskInstance{TaskID: "t", State: TaskRunning, AttemptID: "A", TryNumber: try, TryBase: base}
}

func TestFinishEveryOutcomeAgainstRetryPolicies(t *testing.T) {
	t.Parallel()
	none := RetryPolicy{}
	two := RetryPolicy{Retries: 2, Delay: 5 * time.Minute}
	now := RetryPolicy{Retries: 2}
	expo := RetryPolicy{Retries: 5, Delay: time.Minute, Exponential: true, MaxRetryDelay: 3 * time.Minute}
	cases := []struct {
		name     string
		ti       TaskInstance
		try      int
		o        Outcome
		p        RetryPolicy
		to       TaskState
		due      time.Duration // the next try's delay when up_for_retry (-1: tick_due_at untouched)
		retryNow bool
	}{
		{"success", running(1, 0), 1, Outcome{State: AttemptSuccess}, two, TaskSuccess, -1, false},
		{"skipped", running(1, 0), 1, Outcome{State: AttemptSkipped}, two, TaskSkipped, -1, false},
		{"failed, no retries", running(1, 0), 1, Outcome{State: AttemptFailed, Error: "boom"}, none, TaskFailed, -1, false},
		{"failed, first of three tries", running(1, 0), 1, Outcome{State: AttemptFailed}, two, TaskUpForRetry, 5 * time.Minute, false},
		{"failed, second of three tries", running(2, 0), 2, Outcome{State: AttemptFailed}, two, TaskUpForRetry, 5 * time.Minute, false},
		{"failed, tries used up", running(3, 0), 3, Outcome{State: AttemptFailed}, two, TaskFailed, -1, false},
		{"failed, tries count from the last clear", running(4, 3), 4, Outcome{State: AttemptFailed}, two, TaskUpForRetry, 5 * time.Minute, false},
		{"failed, final: no retry", running(1, 0), 1, Outcome{State: AttemptFailed, Final: true}, two, TaskFailed, -1, false},
		{"lost worker retries like a failure", running(1, 0), 1, Outcome{State: AttemptLost, Error: "lost worker"}, two, TaskUpForRetry, 5 * time.Minute, false},
		{"lost worker, tries used up", running(3, 0), 3, Outcome{State: AttemptLost}, two, TaskFailed, -1, false},
		{"no delay: queued at once", running(1, 0), 1, Outcome{State: AttemptFailed}, now, TaskUpForRetry, 0, true},
		{"exponential backoff, third failure", running(3, 0), 3, Outcome{State: AttemptFailed}, expo, TaskUpForRetry, 3 * time.Minute, false},
		{"exponential backoff, second failure", running(2, 0), 2, Outcome{State: AttemptFailed}, expo, TaskUpForRetry, 2 * time.Minute, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, retryNow, err := Finish(c.ti, "A", c.try, c.o, c.p, SensorPolicy{}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if tr.From != TaskRunning || tr.To != c.to || retryNow != c.retryNow {
				t.Fatalf("%s, retry now %v; want running → %s, %v", tr, retryNow, c.to, c.retryNow)
			}
			if c.due < 0 {
				if tr.Set.TickDueAt.Set {
					t.Fatalf("tick_due_at set to %v; want untouched", tr.Set.TickDueAt.V)
				}
			} else if !tr.Set.TickDueAt.Set || !tr.Set.TickDueAt.V.Equal(t0.Add(c.due)) {
				t.Fatalf("tick_due_at = %+v; want %s", tr.Set.TickDueAt, t0.Add(c.due))
			}
			if !tr.Set.EndedAt.Set || !tr.Set.EndedAt.V.Equal(t0) || tr.Set.Error.V != c.o.Error {
				t.Fatalf("ended_at %+v, error %q; want now and %q", tr.Set.EndedAt, tr.Set.Error.V, c.o.Error)
			}
		})
	}
}

func TestFinishSensorPokes(t *testing.T) {
	t.Parallel()
	first := t0.Add(-10 * time.Minute)
	poking := running(1, 0)
	poking.SensorStartedAt = &first
	s := SensorPolicy{PokeInterval: time.Minute, Timeout: time.Hour}
	notYet := Outcome{State: AttemptReschedule}
	soon := t0.Add(20 * time.Second)
	late := t0.Add(2 * time.Hour)
	cases := []struct {
		name string
		o    Outcome
		s    SensorPolicy
		p    RetryPolicy
		to   TaskState
		due  *time.Time // nil: tick_due_at cleared
	}{
		{"not yet: next poke after poke_interval", notYet, s, RetryPolicy{}, TaskUpForReschedule, ptrTime(t0.Add(time.Minute))},
		{"not yet: the sensor's own next time", Outcome{State: AttemptReschedule, RescheduleAt: &soon}, s, RetryPolicy{}, TaskUpForReschedule, &soon},
		{"not yet: never past the timeout", Outcome{State: AttemptReschedule, RescheduleAt: &late}, s, RetryPolicy{}, TaskUpForReschedule, ptrTime(first.Add(time.Hour))},
		{"timed out: failed, retries skipped", notYet, SensorPolicy{PokeInterval: time.Minute, Timeout: 5 * time.Minute}, RetryPolicy{Retries: 3}, TaskFailed, nil},
		{"timed out with soft_fail: skipped", notYet, SensorPolicy{PokeInterval: time.Minute, Timeout: 5 * time.Minute, SoftFail: true}, RetryPolicy{Retries: 3}, TaskSkipped, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, _, err := Finish(poking, "A", 1, c.o, c.p, c.s, t0)
			if err != nil {
				t.Fatal(err)
			}
			if tr.To != c.to || !tr.Set.TickDueAt.Set {
				t.Fatalf("%s, tick_due_at %+v; want → %s with tick_due_at set", tr, tr.Set.TickDueAt, c.to)
			}
			if got := tr.Set.TickDueAt.V; (got == nil) != (c.due == nil) || (got != nil && !got.Equal(*c.due)) {
				t.Fatalf("tick_due_at = %v; want %v", got, c.due)
			}
			if tr.To == TaskUpForReschedule && tr.Set.EndedAt.Set {
				t.Fatal("a waiting sensor got ended_at")
			}
		})
	}
}

func TestTransitionsRefuseAnInstanceThatMovedOn(t *testing.T) {
	t.Parallel()
	for _, ti := range []TaskInstance{
		{TaskID: "t", State: TaskQueued, AttemptID: "B"},  // a newer attempt
		{TaskID: "t", State: TaskNone, AttemptID: ""},     // cleared
		{TaskID: "t", State: TaskSuccess, AttemptID: "A"}, // marked
		{TaskID: "t", State: TaskRunning, AttemptID: "A"}, // claimed already (for Claim)
	} {
		_, cerr := Claim(ti, "A", t0)
		_, _, ferr := Finish(ti, "A", 1, Outcome{State: AttemptSuccess}, RetryPolicy{}, SensorPolicy{}, t0)
		claimable := ti.State == TaskQueued && ti.AttemptID == "A"
		finishable := ti.State == TaskRunning && ti.AttemptID == "A"
		if (cerr == nil) != claimable || (ferr == nil) != finishable {
			t.Errorf("%s with attempt %q: claim err %v, finish err %v", ti.State, ti.AttemptID, cerr, ferr)
		}
		for _, err := range []error{cerr, ferr} {
			if err != nil && !errors.Is(err, ErrNotClaimable) {
				t.Errorf("error %v does not wrap ErrNotClaimable", err)
			}
		}
	}
}

func TestClaimAndQueue(t *testing.T) {
	t.Parallel()
	q := TaskInstance{TaskID: "t", State: TaskQueued, AttemptID: "A", TryNumber: 1}
	tr, err := Claim(q, "A", t0)
	if err != nil || tr.To != TaskRunning || !tr.Set.TickDueAt.Set || tr.Set.TickDueAt.V != nil || tr.Set.SensorStartedAt.V == nil {
		t.Fatalf("claim = %+v, %v; want → running, republish deadline cleared, first poke now", tr, err)
	}
	first := t0.Add(-time.Hour)
	q.SensorStartedAt = &first
	if tr, _ := Claim(q, "A", t0); tr.Set.SensorStartedAt.Set {
		t.Fatal("a later poke's claim moved the try's first-poke time")
	}
	cases := []struct {
		from    TaskInstance
		newTry  bool
		wantTry int
	}{
		{TaskInstance{State: TaskNone}, true, 1},
		{TaskInstance{State: TaskUpForRetry, TryNumber: 1}, true, 2},
		{TaskInstance{State: TaskUpForReschedule, TryNumber: 1}, false, 1}, // pokes use up no tries
		{TaskInstance{State: TaskNone, TryNumber: 3, TryBase: 3}, true, 4}, // cleared: tries count on
	}
	for _, c := range cases {
		tr := Queue(c.from, "N", c.newTry, t0, 30*time.Second)
		if tr.From != c.from.State || tr.To != TaskQueued || tr.Set.TryNumber.V != c.wantTry || tr.Set.AttemptID.V != "N" ||
			!tr.Set.TickDueAt.V.Equal(t0.Add(30*time.Second)) || tr.Set.SensorStartedAt.Set != c.newTry {
			t.Errorf("queue from %s try %d (new try %v) = %+v; want try %d", c.from.State, c.from.TryNumber, c.newTry, tr, c.wantTry)
		}
	}
}

// TestSettleEveryRuleAndUpstreamMix drives the trigger rules and Settle together, as the
// cascade does: every rule × every mix of upstream states gives the one transition (or none)
// Airflow's trigger_rule_dep gives, for a task that runs and for a noop.
func TestSettleEveryRuleAndUpstreamMix(t *testing.T) {
	t.Parallel()
	rules := []string{AllSuccess, AllFailed, AllDone, AllSkipped, OneSuccess, OneFailed, OneDone, NoneFailed, NoneFailedMinOneSuccess, NoneSkipped, Always}
	mixes := []string{"", ".", "s", "f", "u", "k", "s.", "sf", "sk", "fk", "uk", "kk", "ssk", "sss"}
	n := 0
	for _, rule := range rules {
		for _, mix := range mixes {
			dec, err := Evaluate(rule, counts(mix))
			if err != nil {
				t.Fatal(err)
			}
			for _, runs := range []bool{true, false} {
				tr, ok := Settle(TaskInstance{TaskID: "d", State: TaskNone}, dec, runs, t0)
				want := map[Decision]TaskState{Skip: TaskSkipped, FailUpstream: TaskUpstreamFailed}[dec]
				if dec == Ready && !runs {
					want = TaskSuccess
				}
				name := fmt.Sprintf("%s over %q (runs %v)", rule, mix, runs)
				if ok != (want != "") || (ok && (tr.To != want || tr.From != TaskNone || !tr.Set.EndedAt.Set)) {
					t.Errorf("%s: decision %s gives %+v, %v; want %q", name, dec, tr, ok, want)
				}
				if ok && (tr.To == TaskSuccess) != tr.Set.StartedAt.Set {
					t.Errorf("%s: started_at set %v for %s", name, tr.Set.StartedAt.Set, tr.To)
				}
				n++
			}
		}
	}
	if n != len(rules)*len(mixes)*2 {
		t.Fatalf("%d cases", n)
	}
}

func TestMark(t *testing.T) {
	t.Parallel()
	due := t0.Add(time.Hour)
	tr := Mark(TaskInstance{TaskID: "t", State: TaskUpForRetry, TickDueAt: &due}, TaskSuccess, t0)
	if tr.From != TaskUpForRetry || tr.To != TaskSuccess || !tr.Set.TickDueAt.Set || tr.Set.TickDueAt.V != nil ||
		tr.Set.Error.V != "marked success by hand" || !tr.Set.EndedAt.V.Equal(t0) {
		t.Fatalf("mark = %+v; want up_for_retry → success, its retry deadline cleared, ended now", tr)
	}
}

func TestClear(t *testing.T) {
	t.Parallel()
	due, n := t0, 3
	ti := TaskInstance{TaskID: "t", State: TaskFailed, TryNumber: 3, MaxTries: 3, AttemptID: "A", Error: "boom",
		EndedAt: &due, SensorStartedAt: &due, Follow: []string{"x"}, MapCount: &n}
	tr := Clear(ti, 2)
	s := tr.Set
	if tr.From != TaskFailed || tr.To != TaskNone || s.TryBase.V != 3 || s.MaxTries.V != 6 || !s.AttemptID.Set || s.AttemptID.V != "" {
		t.Fatalf("clear = %+v; want failed → none, tries counted on from 3 with 3 more", tr)
	}
	for name, o := range map[string]Opt[*time.Time]{"queued_at": s.QueuedAt, "started_at": s.StartedAt, "ended_at": s.EndedAt,
		"tick_due_at": s.TickDueAt, "sensor_started_at": s.SensorStartedAt} {
		if !o.Set || o.V != nil {
			t.Errorf("%s not cleared: %+v", name, o)
		}
	}
	if !s.Error.Set || s.Error.V != "" || !s.Follow.Set || s.Follow.V != nil || !s.MapCount.Set || s.MapCount.V != nil {
		t.Errorf("error, follow or map_count not cleared: %+v", s)
	}
}

func TestRunOutcomeAndChanges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tasks, total, done, bad int
		want                    RunState
	}{
		{3, 3, 3, 0, RunSuccess},
		{3, 3, 3, 1, RunFailed},
		{3, 3, 2, 1, RunRunning}, // a failure does not end the run early
		{3, 2, 2, 0, RunRunning}, // an instance not created yet
		{0, 0, 0, 0, RunSuccess}, // a DAG without tasks
	}
	for _, c := range cases {
		if got := RunOutcome(c.tasks, c.total, c.done, c.bad); got != c.want {
			t.Errorf("RunOutcome(%d tasks, %d instances, %d done, %d bad) = %s; want %s", c.tasks, c.total, c.done, c.bad, got, c.want)
		}
	}
	timeout := t0.Add(time.Minute)
	if ch := StartRun(t0, t0.Add(time.Hour), &timeout); ch.State.V != RunRunning || !ch.TickDueAt.V.Equal(timeout) || ch.TimeoutAt.V != &timeout {
		t.Errorf("start with a timeout before the lease: %+v; want tick_due_at at the timeout", ch)
	}
	if ch := StartRun(t0, t0.Add(time.Hour), nil); !ch.TickDueAt.V.Equal(t0.Add(time.Hour)) || !ch.TimeoutAt.Set || ch.TimeoutAt.V != nil {
		t.Errorf("start without a timeout: %+v; want tick_due_at at the lease", ch)
	}
	if ch := SettleRun(RunFailed, t0, nil); !ch.EndedAt.V.Equal(t0) || !ch.TickDueAt.Set || ch.TickDueAt.V != nil || ch.TimeoutAt.Set {
		t.Errorf("settle failed: %+v", ch)
	}
	if ch := SettleRun(RunRunning, t0, &timeout); !ch.EndedAt.Set || ch.EndedAt.V != nil || ch.TickDueAt.V != &timeout || ch.TimeoutAt.V != &timeout {
		t.Errorf("reopen: %+v", ch)
	}
}
