package bq

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun/taskruntest"
	"github.com/updraft-dev/updraft/scheduler"
)

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
	hold := &taskruntest.MemHold{Started: time.Now()}
	ctx := context.Background()

	tc, log := taskruntest.DeferredContext(t, env, hold, 1, "bq-1", task, args)
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
	hold.Ref = ""
	tc, log = taskruntest.DeferredContext(t, env, hold, 1, "bq-1", task, args)
	if res := BigQueryQuery().Run(ctx, tc); res.State != scheduler.AttemptReschedule || !strings.Contains(log.String(), "re-attached") {
		t.Fatalf("redelivered submit: %s %q\n%s", res.State, res.Error, log)
	}
	if got := proxy.Jobs(); len(got) != 1 || proxy.Inserts(id) != 1 {
		t.Fatalf("jobs %v, inserts %d; want one job, created once", got, proxy.Inserts(id))
	}
	// A poke while the job runs reads its status once and waits again.
	gets := proxy.Gets(id)
	tc, log = taskruntest.DeferredContext(t, env, hold, 1, "bq-2", task, args)
	if res := BigQueryQuery().Run(ctx, tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("poke: %s %q\n%s", res.State, res.Error, log)
	}
	if proxy.Gets(id) != gets+1 {
		t.Fatalf("the poke read the job %d times; want once", proxy.Gets(id)-gets)
	}
	// Done: the poke that sees it reads the rows into XCom.
	proxy.Release(id)
	tc, log = taskruntest.DeferredContext(t, env, hold, 1, "bq-3", task, args)
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
	hold := &taskruntest.MemHold{Started: time.Now()}
	tc, log := taskruntest.DeferredContext(t, env, hold, 1, "bq-timeout", task, map[string]any{"sql": "SELECT 1 AS n"})
	if res := BigQueryQuery().Run(context.Background(), tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("submit: %s %q\n%s", res.State, res.Error, log)
	}
	hold.Started = time.Now().Add(-2 * time.Minute) // the wait began before the timeout
	tc, log = taskruntest.DeferredContext(t, env, hold, 1, "bq-timeout-2", task, map[string]any{"sql": "SELECT 1 AS n"})
	res := BigQueryQuery().Run(context.Background(), tc)
	if res.State != scheduler.AttemptFailed || res.Final || !strings.Contains(res.Error, "timed out after 1m0s") {
		t.Fatalf("poke past the timeout: %s final=%v %q\n%s", res.State, res.Final, res.Error, log)
	}
	if !proxy.Cancelled(jobID("bq-timeout")) {
		t.Fatal("the job was not cancelled")
	}
}
