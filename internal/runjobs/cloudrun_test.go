package runjobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// cloudRunBundle is a Cloud Run stand-in for one test and what a cloudrun.job task needs to
// reach it.
type cloudRunBundle struct {
	srv *runemu.Server
	dir string
	env map[string]string
	log *bytes.Buffer
}

func setupCloudRun(t *testing.T, jobs map[string]runemu.JobSpec) *cloudRunBundle {
	t.Helper()
	dir := t.TempDir()
	srv, err := runemu.Start(runemu.Config{Jobs: jobs, KillGrace: time.Second}, filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &cloudRunBundle{srv: srv, dir: dir, log: &bytes.Buffer{}, env: map[string]string{
		runemu.EnvVar: srv.Addr, "GOOGLE_CLOUD_PROJECT": "p1", "UPDRAFT_REGION": "asia-northeast3",
	}}
}

func (b *cloudRunBundle) context(t *testing.T, args map[string]any) *taskrun.Context {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "export", TryNumber: 1, AttemptID: "a1"}
	log, err := tasks.NewLogger(b.log, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &taskrun.Context{Ref: ref, Args: args, Log: log, Getenv: func(k string) string { return b.env[k] }}
}

// execution reads an execution from the stand-in with the official client.
func (b *cloudRunBundle) execution(t *testing.T, name string) *runpb.Execution {
	t.Helper()
	c, err := run.NewExecutionsClient(context.Background(), option.WithEndpoint(b.srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x, err := c.GetExecution(context.Background(), &runpb.GetExecutionRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func cloudRunXCom(t *testing.T, raw json.RawMessage) (execution, logURI string) {
	t.Helper()
	var x struct {
		Execution string `json:"execution"`
		LogURI    string `json:"log_uri"`
	}
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatalf("XCom %s: %v", raw, err)
	}
	return x.Execution, x.LogURI
}

func TestCloudRunJobSucceeds(t *testing.T) {
	t.Parallel()
	b := setupCloudRun(t, map[string]runemu.JobSpec{"nightly-export": {Command: []string{"/bin/sh", "-c", "echo exported"}}})
	res := runCloudRunJob(context.Background(), b.context(t, map[string]any{"job": "nightly-export", "poll_interval": "50ms"}))
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("result: %+v", res)
	}
	name, uri := cloudRunXCom(t, res.XCom)
	if !strings.HasPrefix(name, "projects/p1/locations/asia-northeast3/jobs/nightly-export/executions/nightly-export-") ||
		!strings.HasPrefix(uri, "file:///") {
		t.Errorf("XCom: %s", res.XCom)
	}
	if log, _ := os.ReadFile(strings.TrimPrefix(uri, "file://")); string(log) != "exported\n" {
		t.Errorf("execution log: %q", log)
	}
	if !strings.Contains(b.log.String(), "started Cloud Run execution "+name) {
		t.Errorf("the attempt's log does not name the execution:\n%s", b.log)
	}
}

func TestCloudRunJobFailure(t *testing.T) {
	t.Parallel()
	b := setupCloudRun(t, map[string]runemu.JobSpec{"flaky": {Command: []string{"/bin/sh", "-c", "echo bad input >&2; exit 3"}}})
	b.env["UPDRAFT_REGION"] = "" // a full name needs none
	res := runCloudRunJob(context.Background(), b.context(t, map[string]any{
		"job": "projects/p2/locations/europe-west1/jobs/flaky", "poll_interval": 0.05}))
	if res.State != scheduler.AttemptFailed || res.Final ||
		!strings.Contains(res.Error, "projects/p2/locations/europe-west1/jobs/flaky/executions/flaky-") ||
		!strings.Contains(res.Error, "exit code 3") || !strings.Contains(res.Error, "logs: file:///") {
		t.Errorf("result: %+v", res)
	}
}

func TestCloudRunJobOverrides(t *testing.T) {
	t.Parallel()
	b := setupCloudRun(t, map[string]runemu.JobSpec{
		"report": {Command: []string{"/bin/sh", "-c", "exit 9"}, Env: map[string]string{"GREETING": "job default", "KEEP": "kept"}},
	})
	out := filepath.Join(b.dir, "out.txt")
	res := runCloudRunJob(context.Background(), b.context(t, map[string]any{
		"job": "report", "region": "us-central1", "project": "p3", "poll_interval": "50ms", "timeout": "90s",
		"args": []any{"-c", `printf '%s|' "$1" "$2" "$GREETING" "$KEEP" "$CLOUD_RUN_JOB" > "$OUT"`, "sh", "2025-01-01", 42},
		"env":  map[string]any{"GREETING": "hi there", "OUT": out},
	}))
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("result: %+v", res)
	}
	if got, _ := os.ReadFile(out); string(got) != "2025-01-01|42|hi there|kept|report|" {
		t.Errorf("the job saw %q", got)
	}
	name, _ := cloudRunXCom(t, res.XCom)
	if !strings.HasPrefix(name, "projects/p3/locations/us-central1/jobs/report/") {
		t.Errorf("execution %s is not in with.project and with.region", name)
	}
	if d := b.execution(t, name).GetTemplate().GetTimeout().AsDuration(); d != 90*time.Second {
		t.Errorf("task timeout %s; want the override 90s", d)
	}
}

func TestCloudRunJobTimeoutCancelsExecution(t *testing.T) {
	t.Parallel()
	b := setupCloudRun(t, map[string]runemu.JobSpec{"sleeper": {Command: []string{"/bin/sh", "-c", `echo $$ > "$PIDFILE"; exec sleep 60`}}})
	pidFile := filepath.Join(b.dir, "pid")
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, errors.New("timed out after 1s (the task's timeout)"))
	defer cancel()
	res := runCloudRunJob(ctx, b.context(t, map[string]any{"job": "sleeper", "poll_interval": "50ms", "env": map[string]any{"PIDFILE": pidFile}}))
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "timed out after 1s") || !strings.Contains(res.Error, "cancelled") {
		t.Fatalf("result: %+v", res)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	name := res.Error[strings.Index(res.Error, "projects/"):]
	name = name[:strings.IndexByte(name, ' ')]
	// The cancel is not waited for by the task: wait for the stand-in to reap the process.
	deadline := time.Now().Add(10 * time.Second)
	x := b.execution(t, name)
	for x.GetCompletionTime() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		x = b.execution(t, name)
	}
	if x.GetCancelledCount() != 1 {
		t.Errorf("execution after the timeout: %v", x)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the job's process %d is still there: %v", pid, err)
	}
}

func TestCloudRunJobUnknownJob(t *testing.T) {
	t.Parallel()
	b := setupCloudRun(t, nil)
	res := runCloudRunJob(context.Background(), b.context(t, map[string]any{"job": "missing"}))
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "does not exist") ||
		!strings.Contains(res.Error, "projects/p1/locations/asia-northeast3/jobs/missing") {
		t.Errorf("result: %+v", res)
	}
	b.env["UPDRAFT_REGION"] = ""
	res = runCloudRunJob(context.Background(), b.context(t, map[string]any{"job": "missing"}))
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "UPDRAFT_REGION") {
		t.Errorf("without a region: %+v", res)
	}
}

func TestCloudRunJobCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{}, "job"},
		{map[string]any{"job": "Nightly_Export"}, "job"},
		{map[string]any{"job": "projects/p/jobs/x"}, "job"},
		{map[string]any{"job": "x", "region": 3}, "region"},
		{map[string]any{"job": "x", "region": "evil.example.com:443/"}, "region"},
		{map[string]any{"job": "x", "args": "--date 2025-01-01"}, "args"},
		{map[string]any{"job": "x", "args": []any{"a", map[string]any{"b": 1}}}, "args"},
		{map[string]any{"job": "x", "env": []any{"A=1"}}, "env"},
		{map[string]any{"job": "x", "timeout": "soon"}, "timeout"},
		{map[string]any{"job": "x", "poll_interval": "0s"}, "poll_interval"},
		{map[string]any{"job": "x", "image": "gcr.io/x"}, "image"},
	}
	for _, c := range cases {
		ps := checkCloudRunJob(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	for _, ok := range []map[string]any{
		{"job": "nightly-export", "args": []any{"--date", "{{ .ds }}", 3}, "env": map[string]any{"N": 1, "D": "{{ .ds }}"},
			"timeout": "{{ .params.timeout }}", "poll_interval": 10, "region": "asia-northeast3", "project": "p"},
		{"job": "projects/p/locations/asia-northeast3/jobs/nightly-export", "timeout": "1h30m"},
		{"job": "{{ .params.job }}"},
	} {
		if ps := checkCloudRunJob(ok); len(ps) != 0 {
			t.Errorf("%v: problems %+v", ok, ps)
		}
	}
	if typ := CloudRunJob(); typ.Name != "cloudrun.job" || !typ.Inline || typ.Run == nil || typ.Check == nil {
		t.Errorf("type: %+v", typ)
	}
}
