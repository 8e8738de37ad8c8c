package taskrun

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// memHold is a task instance's job field as a deferred type sees it through its claim,
// kept in memory, so a test can lose what a dying process would not have saved.
type memHold struct {
	ref     string
	started time.Time
	saves   int
}

func (h *memHold) Job() (engine.JobRef, bool) { return engine.ParseJobRef(h.ref) }
func (h *memHold) SaveJob(_ context.Context, ref engine.JobRef) error {
	h.ref, h.saves = ref.String(), h.saves+1
	return nil
}
func (h *memHold) WaitStarted() time.Time { return h.started }

// deferredCtx is one attempt of a deferred task over hold.
func deferredCtx(t *testing.T, env map[string]string, hold *memHold, try int, attemptID string, task *dag.Task, args map[string]any) (*Context, *bytes.Buffer) {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "t", TryNumber: try, AttemptID: attemptID}
	var buf bytes.Buffer
	log, err := tasks.NewLogger(&buf, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &Context{Ref: ref, Task: task, Args: args, Log: log, Job: hold, Now: time.Now,
		Getenv: func(k string) string { return env[k] }}, &buf
}

func TestCloudRunJobIsStartedOncePerAttemptWhateverDies(t *testing.T) {
	b := setupCloudRun(t, map[string]runemu.JobSpec{"long": {Command: []string{"/bin/sh", "-c", "sleep 30"}}})
	task := &dag.Task{ID: "t", Type: "cloudrun.job"}
	args := map[string]any{"job": "long"}
	hold := &memHold{started: time.Now()}
	ctx := context.Background()

	// The first attempt saves the reference before it starts the execution, then waits.
	tc, log := deferredCtx(t, b.env, hold, 1, "att-1", task, args)
	res := CloudRunJob().Run(ctx, tc)
	if res.State != scheduler.AttemptReschedule || res.RescheduleAt == nil {
		t.Fatalf("submit: %s %q; want up_for_reschedule with a next poke\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after the submit; want 1", n)
	}
	ref, _ := hold.Job()
	if ref.Tag != "att-1" || ref.Execution == "" || ref.Try != 1 {
		t.Fatalf("saved reference %+v", ref)
	}

	// The process died after RunJob and before it saved the execution's name: the same
	// attempt delivered again finds the execution by its tag.
	lost := ref
	lost.Execution = ""
	hold.ref = lost.String()
	tc, log = deferredCtx(t, b.env, hold, 1, "att-1", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("redelivered submit: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after a redelivered submit; want 1\n%s", n, log)
	}
	if got, _ := hold.Job(); got.Execution != ref.Execution {
		t.Fatalf("found %q by tag; want %q", got.Execution, ref.Execution)
	}

	// The worker was lost and the retry policy started try 2: it adopts the running execution.
	hold.ref = lost.String()
	tc, log = deferredCtx(t, b.env, hold, 2, "att-2", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("try 2: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 1 {
		t.Fatalf("%d executions after try 2; want the one of try 1, adopted\n%s", n, log)
	}
	if got, _ := hold.Job(); got.Try != 2 || got.Tag != "att-1" || !strings.Contains(log.String(), "adopts") {
		t.Fatalf("try 2 saved %+v\n%s", got, log)
	}

	// Its timeout passed: the poke cancels the execution and fails; the next try starts anew.
	task.Timeout = time.Second
	hold.started = time.Now().Add(-time.Minute)
	tc, log = deferredCtx(t, b.env, hold, 2, "att-3", task, args)
	res = CloudRunJob().Run(ctx, tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "timed out after 1s") || !strings.Contains(res.Error, "cancelled") {
		t.Fatalf("poke past the timeout: %s %q", res.State, res.Error)
	}
	waitFor(t, "the execution to end cancelled", func() bool {
		for _, st := range b.srv.ExecutionStates("long") {
			return st == "cancelled"
		}
		return false
	})
	if got, _ := hold.Job(); !got.Cancelled {
		t.Fatalf("the cancelled execution is not marked so: %+v", got)
	}
	task.Timeout = 0
	hold.started = time.Now()
	tc, log = deferredCtx(t, b.env, hold, 3, "att-4", task, args)
	if res := CloudRunJob().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("try 3: %s %q\n%s", res.State, res.Error, log)
	}
	if n := b.srv.ExecutionCount("long"); n != 2 {
		t.Fatalf("%d executions; want a new one for try 3 (the cancelled one is not adopted)", n)
	}
	if err := (JobCanceller{Getenv: func(k string) string { return b.env[k] }}).CancelJob(ctx, mustRef(t, hold)); err != nil {
		t.Fatal(err)
	}
}

func mustRef(t *testing.T, h *memHold) engine.JobRef {
	t.Helper()
	r, ok := h.Job()
	if !ok {
		t.Fatal("no job saved")
	}
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not a timing assumption
	}
}

func TestBigQueryJobIsSubmittedOncePerAttemptAndPokedUntilDone(t *testing.T) {
	s := setupBigQuery(t)
	proxy, err := bqemu.StartProxy(bqEmu.Host, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": bqProject, bqemu.EnvVar: proxy.Host}
	task := &dag.Task{ID: "t", Type: "bigquery.query", PokeInterval: 2 * time.Second}
	args := map[string]any{"sql": "SELECT 7 AS n, 'x' AS s"}
	hold := &memHold{started: time.Now()}
	ctx := context.Background()

	tc, log := deferredCtx(t, env, hold, 1, "bq-1", task, args)
	res := BigQueryQuery().Run(ctx, tc)
	if res.State != scheduler.AttemptReschedule {
		t.Fatalf("submit: %s %q\n%s", res.State, res.Error, log)
	}
	if d := time.Until(*res.RescheduleAt); d > 2*time.Second {
		t.Errorf("next poke in %s; want at most the task's poke_interval (2s)", d)
	}
	id := jobID("bq-1")
	if got := proxy.Jobs(); len(got) != 1 || got[0] != id {
		t.Fatalf("jobs created %v; want [%s]", got, id)
	}
	// A redelivery of the submit whose save was lost: jobs.insert finds the id taken and the
	// attempt re-attaches to the job; the emulator ran the query once.
	hold.ref = ""
	tc, log = deferredCtx(t, env, hold, 1, "bq-1", task, args)
	if res := BigQueryQuery().Run(ctx, tc); res.State != scheduler.AttemptReschedule || !strings.Contains(log.String(), "re-attached") {
		t.Fatalf("redelivered submit: %s %q\n%s", res.State, res.Error, log)
	}
	if got := proxy.Jobs(); len(got) != 1 || proxy.Inserts(id) != 1 {
		t.Fatalf("jobs %v, inserts %d; want one job, created once", got, proxy.Inserts(id))
	}
	// A poke while the job runs reads its status once and waits again.
	gets := proxy.Gets(id)
	tc, log = deferredCtx(t, env, hold, 1, "bq-2", task, args)
	if res := BigQueryQuery().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("poke: %s %q\n%s", res.State, res.Error, log)
	}
	if proxy.Gets(id) != gets+1 {
		t.Fatalf("the poke read the job %d times; want once", proxy.Gets(id)-gets)
	}
	// Done: the poke that sees it reads the rows into XCom.
	proxy.Release(id)
	tc, log = deferredCtx(t, env, hold, 1, "bq-3", task, args)
	res = BigQueryQuery().Run(ctx, tc)
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("poke after release: %s %q\n%s", res.State, res.Error, log)
	}
	var x struct {
		JobID string           `json:"job_id"`
		Rows  []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(res.XCom, &x); err != nil || x.JobID != id || len(x.Rows) != 1 || x.Rows[0]["s"] != "x" {
		t.Fatalf("XCom %s (%v)", res.XCom, err)
	}
	_ = s
}

func TestBigQueryTimeoutCancelsTheHeldJob(t *testing.T) {
	setupBigQuery(t)
	proxy, err := bqemu.StartProxy(bqEmu.Host, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": bqProject, bqemu.EnvVar: proxy.Host}
	task := &dag.Task{ID: "t", Type: "bigquery.query", Timeout: time.Minute}
	hold := &memHold{started: time.Now()}
	tc, log := deferredCtx(t, env, hold, 1, "bq-timeout", task, map[string]any{"sql": "SELECT 1 AS n"})
	if res := BigQueryQuery().Run(context.Background(), tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("submit: %s %q\n%s", res.State, res.Error, log)
	}
	hold.started = time.Now().Add(-2 * time.Minute) // the wait began before the timeout
	tc, log = deferredCtx(t, env, hold, 1, "bq-timeout-2", task, map[string]any{"sql": "SELECT 1 AS n"})
	res := BigQueryQuery().Run(context.Background(), tc)
	if res.State != scheduler.AttemptFailed || res.Final || !strings.Contains(res.Error, "timed out after 1m0s") {
		t.Fatalf("poke past the timeout: %s final=%v %q\n%s", res.State, res.Final, res.Error, log)
	}
	if !proxy.Cancelled(jobID("bq-timeout")) {
		t.Fatal("the job was not cancelled")
	}
}

func TestPokesBackOffToThePokeInterval(t *testing.T) {
	submitted := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := submitted
	hold := &memHold{started: submitted}
	task := &dag.Task{ID: "t", Timeout: 2 * time.Hour}
	w := waiting{tc: &Context{Task: task, Job: hold, Now: func() time.Time { return now }}}
	ref := engine.JobRef{SubmittedAt: submitted}
	var gaps []time.Duration
	pokes := 0
	for now.Before(submitted.Add(time.Hour)) {
		next := *w.pokeAfter(ref).RescheduleAt
		gaps = append(gaps, next.Sub(now))
		now = next
		pokes++
	}
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, g := range want {
		if gaps[i] != g {
			t.Fatalf("gaps %v…; want %v…", gaps[:len(want)], want)
		}
	}
	if pokes != 64 { // the submit's "not yet" and 63 pokes: 5 while backing off, then one a minute
		t.Fatalf("%d attempts in the first hour; want the submit and 63 pokes", pokes)
	}
	// The deadline caps the last wait: the poke at it cancels the job.
	now = submitted.Add(2*time.Hour - 10*time.Second)
	if next := *w.pokeAfter(ref).RescheduleAt; !next.Equal(submitted.Add(2 * time.Hour)) {
		t.Fatalf("last poke at %v; want the deadline", next)
	}
	task.PokeInterval = 10 * time.Second
	now = submitted.Add(time.Hour)
	if d := w.pokeAfter(ref).RescheduleAt.Sub(now); d != 10*time.Second {
		t.Fatalf("gap %s with poke_interval 10s", d)
	}
}
