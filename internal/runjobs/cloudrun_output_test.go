package runjobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	logemu "github.com/updraft-dev/updraft/emulators/logging"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/joblogs"
	"github.com/updraft-dev/updraft/internal/taskrun/taskruntest"
	"github.com/updraft-dev/updraft/scheduler"
)

// setupCloudRunLogs is setupCloudRun with the Logging stand-in the Cloud Run stand-in feeds,
// as the local stack runs them.
func setupCloudRunLogs(t *testing.T, jobs map[string]runemu.JobSpec) *cloudRunBundle {
	t.Helper()
	b := setupCloudRun(t, jobs)
	logs, err := logemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(logs.Stop)
	b.srv.SetLogSink(logs.Write)
	b.env[logemu.EnvVar] = logs.Addr
	return b
}

// TestCloudRunJobWaitedInlineCopiesItsOutput: waited for inline (in a worker container), the
// execution's output is in the attempt's log when it ends, masked, after the link line.
func TestCloudRunJobWaitedInlineCopiesItsOutput(t *testing.T) {
	t.Parallel()
	b := setupCloudRunLogs(t, map[string]runemu.JobSpec{"chatty": {Command: []string{"/bin/sh", "-c",
		`echo "rows: 12"; echo "token hunter2 used"; echo "bad row 7" >&2; exit 2`}}})
	tc := b.context(t, map[string]any{"job": "chatty", "poll_interval": "50ms"})
	tc.Log.SetMask(func() []string { return []string{"hunter2"} })
	res := runCloudRunJob(context.Background(), tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "exit code 2") {
		t.Fatalf("result %+v; want the exit code 2 failure", res)
	}
	log := b.log.String()
	for _, want := range []string{"[container stdout] rows: 12", "[container stdout] token *** used", "[container stderr] bad row 7"} {
		if !strings.Contains(log, want) {
			t.Errorf("the attempt's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "hunter2") {
		t.Errorf("the attempt's log shows the secret:\n%s", log)
	}
	if strings.Index(log, "started Cloud Run execution") > strings.Index(log, "rows: 12") {
		t.Errorf("the link line comes after the output:\n%s", log)
	}
}

// TestCloudRunJobCancelledAtTheTimeoutKeepsItsOutputSoFar: what the container printed before
// the task's timeout cancelled it is in the attempt's log.
func TestCloudRunJobCancelledAtTheTimeoutKeepsItsOutputSoFar(t *testing.T) {
	t.Parallel()
	hold := filepath.Join(t.TempDir(), "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := setupCloudRunLogs(t, map[string]runemu.JobSpec{"stuck": {Command: []string{"/bin/sh", "-c",
		`echo "working on it"; while [ -e ` + hold + ` ]; do sleep 0.1; done`}}})
	t.Cleanup(func() { os.Remove(hold) })
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	tc := b.context(t, map[string]any{"job": "stuck", "poll_interval": "50ms"})
	done := make(chan string, 1)
	go func() { done <- runCloudRunJob(ctx, tc).Error }()
	// The task's timeout comes once the line is in Cloud Logging (the stand-in).
	waitForLine(t, b, "stuck", "working on it")
	cancel(errors.New("timed out after 1m0s (the task's timeout)"))
	if msg := <-done; !strings.Contains(msg, "cancelled") {
		t.Fatalf("error %q; want the execution cancelled", msg)
	}
	if log := b.log.String(); !strings.Contains(log, "[container stdout] working on it") {
		t.Errorf("the attempt's log lacks the output before the timeout:\n%s", log)
	}
}

// waitForLine waits until a line of job's execution is readable from the Logging stand-in,
// read as the task reads it.
func waitForLine(t *testing.T, b *cloudRunBundle, job, text string) {
	t.Helper()
	taskruntest.WaitFor(t, "the execution's line in the Logging stand-in", func() bool {
		var seen bool
		for short := range b.srv.ExecutionStates(job) {
			x := joblogs.Execution{Name: "projects/p1/locations/asia-northeast3/jobs/" + job + "/executions/" + short}
			_ = joblogs.Copy(context.Background(), func(k string) string { return b.env[k] }, x, 0,
				func(l joblogs.Line) { seen = seen || l.Text == text })
		}
		return seen
	})
}

// TestCloudRunJobPokePastTheTimeoutKeepsItsOutputSoFar: the deferred poke that cancels the
// execution at the task's timeout copies what the container printed until then.
func TestCloudRunJobPokePastTheTimeoutKeepsItsOutputSoFar(t *testing.T) {
	t.Parallel()
	hold := filepath.Join(t.TempDir(), "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hold) })
	b := setupCloudRunLogs(t, map[string]runemu.JobSpec{"slow": {Command: []string{"/bin/sh", "-c",
		`echo "step 1 of 9"; while [ -e ` + hold + ` ]; do sleep 0.1; done`}}})
	task := &dag.Task{ID: "t", Type: "cloudrun.job"}
	args := map[string]any{"job": "slow"}
	jobHold := &taskruntest.MemHold{Started: time.Now()}
	tc, _ := taskruntest.DeferredContext(t, b.env, jobHold, 1, "att-1", task, args)
	if res := CloudRunJob().Run(context.Background(), tc); res.State != scheduler.AttemptReschedule {
		t.Fatalf("submit: %s %q", res.State, res.Error)
	}
	waitForLine(t, b, "slow", "step 1 of 9")
	task.Timeout = time.Second
	jobHold.Started = time.Now().Add(-time.Minute)
	tc, log := taskruntest.DeferredContext(t, b.env, jobHold, 1, "att-2", task, args)
	res := CloudRunJob().Run(context.Background(), tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "cancelled") {
		t.Fatalf("poke past the timeout: %s %q", res.State, res.Error)
	}
	if !strings.Contains(log.String(), "[container stdout] step 1 of 9") {
		t.Errorf("the poke's log lacks the output so far:\n%s", log)
	}
}
