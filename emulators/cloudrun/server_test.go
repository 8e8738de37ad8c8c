package runemu_test

import (
	"context"
	"errors"
	"net/url"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
)

// bundle is what a test gets from setup: a stand-in and the official clients pointed at it.
type bundle struct {
	srv   *runemu.Server
	jobs  *run.JobsClient
	execs *run.ExecutionsClient
	dir   string
}

func setup(t *testing.T, cfg runemu.Config) *bundle {
	t.Helper()
	dir := t.TempDir()
	srv, err := runemu.Start(cfg, filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	opts := []option.ClientOption{option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	jobs, err := run.NewJobsClient(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { jobs.Close() })
	execs, err := run.NewExecutionsClient(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { execs.Close() })
	return &bundle{srv: srv, jobs: jobs, execs: execs, dir: dir}
}

func jobPath(id string) string { return "projects/p1/locations/asia-northeast3/jobs/" + id }

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func completed(x *runpb.Execution) *runpb.Condition {
	for _, c := range x.GetConditions() {
		if c.GetType() == "Completed" {
			return c
		}
	}
	return nil
}

// waitCtx bounds a test's waits.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readPID waits for a job's process to write its pid to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("pid file %s: %q", path, b)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists (kill 0: %v)", pid, err)
	}
}

func TestCloudRunRunJobSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{
		"hello": {Command: sh(`echo "hello from $CLOUD_RUN_JOB"; echo oops >&2; exit 0`)},
	}})
	ctx := waitCtx(t)
	op, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("hello")})
	if err != nil {
		t.Fatal(err)
	}
	md, err := op.Metadata()
	if err != nil || md == nil || !strings.HasPrefix(md.GetName(), jobPath("hello")+"/executions/hello-") {
		t.Fatalf("RunJob metadata: %v %v", md, err)
	}
	x, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if x.GetName() != md.GetName() || x.GetSucceededCount() != 1 || x.GetFailedCount() != 0 || x.GetRunningCount() != 0 ||
		x.GetTaskCount() != 1 || x.GetReconciling() || x.GetCompletionTime() == nil || x.GetStartTime() == nil ||
		x.GetCreateTime() == nil || x.GetUid() == "" || x.GetJob() != "hello" {
		t.Errorf("execution: %v", x)
	}
	if c := completed(x); c.GetState() != runpb.Condition_CONDITION_SUCCEEDED {
		t.Errorf("Completed condition: %v", c)
	}
	u, err := url.Parse(x.GetLogUri())
	if err != nil || u.Scheme != "file" {
		t.Fatalf("log uri %q", x.GetLogUri())
	}
	if log, err := os.ReadFile(u.Path); err != nil || string(log) != "hello from hello\noops\n" {
		t.Errorf("log %s: %q %v", u.Path, log, err)
	}
	got, err := b.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: x.GetName()})
	if err != nil || got.GetSucceededCount() != 1 {
		t.Errorf("GetExecution: %v %v", got, err)
	}
	it := b.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: jobPath("hello")})
	if first, err := it.Next(); err != nil || first.GetName() != x.GetName() {
		t.Errorf("ListExecutions: %v %v", first, err)
	}
	job, err := b.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: jobPath("hello")})
	if err != nil || job.GetExecutionCount() != 1 || job.GetLatestCreatedExecution().GetName() != x.GetName() ||
		job.GetLatestCreatedExecution().GetCompletionStatus() != runpb.ExecutionReference_EXECUTION_SUCCEEDED {
		t.Errorf("GetJob: %v %v", job, err)
	}
}

func TestCloudRunRunJobFailsWithExitCode(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{"boom": {Command: sh("exit 3")}}})
	ctx := waitCtx(t)
	op, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("boom")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Wait(ctx); err == nil || !strings.Contains(err.Error(), "exit code 3") {
		t.Errorf("Wait: %v; want the failure", err)
	}
	md, _ := op.Metadata()
	x, err := b.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: md.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	c := completed(x)
	if x.GetFailedCount() != 1 || x.GetSucceededCount() != 0 || c.GetState() != runpb.Condition_CONDITION_FAILED ||
		c.GetExecutionReason() != runpb.Condition_NON_ZERO_EXIT_CODE ||
		c.GetMessage() != "Task "+x.GetName()[strings.LastIndex(x.GetName(), "/")+1:]+"-task0 failed with message: The container exited with exit code 3." {
		t.Errorf("execution: %v", x)
	}
}

func TestCloudRunRunJobOverrides(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{
		"report": {Command: sh("exit 9"), Env: map[string]string{"FROM_JOB": "job", "GREETING": "job default"}},
	}})
	ctx := waitCtx(t)
	out := filepath.Join(b.dir, "out.txt")
	script := `printf '%s|' "$0" "$1" "$2" "$GREETING" "$FROM_JOB" "$CLOUD_RUN_JOB" "$CLOUD_RUN_EXECUTION" > "$OUT"`
	op, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("report"), Overrides: &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{
			Args: []string{"-c", script, "zero", "arg one", "--date=2025-01-01"},
			Env: []*runpb.EnvVar{{Name: "GREETING", Values: &runpb.EnvVar_Value{Value: "hi there"}},
				{Name: "OUT", Values: &runpb.EnvVar_Value{Value: out}}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	x, err := op.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := x.GetName()[strings.LastIndex(x.GetName(), "/")+1:]
	if got, _ := os.ReadFile(out); string(got) != "zero|arg one|--date=2025-01-01|hi there|job|report|"+id+"|" {
		t.Errorf("the process saw %q", got)
	}
	if c := x.GetTemplate().GetContainers()[0]; len(c.GetArgs()) != 5 || c.GetCommand()[0] != "/bin/sh" {
		t.Errorf("template: %v", c)
	}

	// clear_args leaves the entrypoint alone: sh reading an empty stdin exits 0.
	op, err = b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("report"), Overrides: &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{ClearArgs: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if x, err := op.Wait(ctx); err != nil || x.GetSucceededCount() != 1 {
		t.Errorf("clear_args: %v %v", x, err)
	}
}

func TestCloudRunRunJobTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{KillGrace: 200 * time.Millisecond, Jobs: map[string]runemu.JobSpec{
		"slow":     {Command: sh(`echo $$ > "$PIDFILE"; exec sleep 60`)},
		"stubborn": {Command: sh(`trap '' TERM; echo $$ > "$PIDFILE"; while :; do sleep 0.05; done`), Timeout: 300 * time.Millisecond},
	}})
	ctx := waitCtx(t)
	for _, c := range []struct {
		job     string
		timeout *durationpb.Duration
	}{{"slow", durationpb.New(300 * time.Millisecond)}, {"stubborn", nil}} {
		pidFile := filepath.Join(b.dir, c.job+".pid")
		op, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath(c.job), Overrides: &runpb.RunJobRequest_Overrides{
			Timeout: c.timeout,
			ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{
				Env: []*runpb.EnvVar{{Name: "PIDFILE", Values: &runpb.EnvVar_Value{Value: pidFile}}},
			}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		pid := readPID(t, pidFile)
		if _, err := op.Wait(ctx); err == nil || !strings.Contains(err.Error(), "The configured timeout was reached.") {
			t.Errorf("%s: Wait: %v; want a timeout", c.job, err)
		}
		md, _ := op.Metadata()
		if x, err := b.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: md.GetName()}); err != nil ||
			x.GetFailedCount() != 1 || completed(x).GetState() != runpb.Condition_CONDITION_FAILED {
			t.Errorf("%s: execution %v %v", c.job, x, err)
		}
		assertGone(t, pid)
	}
}

func TestCloudRunCancelExecution(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{
		"sleeper": {Command: sh(`echo $$ > "$PIDFILE"; exec sleep 60`)},
	}})
	ctx := waitCtx(t)
	pidFile := filepath.Join(b.dir, "sleeper.pid")
	op, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("sleeper"), Overrides: &runpb.RunJobRequest_Overrides{
		ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{
			Env: []*runpb.EnvVar{{Name: "PIDFILE", Values: &runpb.EnvVar_Value{Value: pidFile}}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, pidFile)
	md, _ := op.Metadata()
	if x, err := b.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: md.GetName()}); err != nil ||
		x.GetRunningCount() != 1 || !x.GetReconciling() || x.GetCompletionTime() != nil {
		t.Errorf("running execution: %v %v", x, err)
	}
	cop, err := b.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: md.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	x, err := cop.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := completed(x)
	if x.GetCancelledCount() != 1 || x.GetSucceededCount() != 0 || c.GetExecutionReason() != runpb.Condition_CANCELLED {
		t.Errorf("cancelled execution: %v", x)
	}
	assertGone(t, pid)
	if x, err := op.Wait(ctx); err != nil || x.GetCancelledCount() != 1 {
		t.Errorf("RunJob operation of a cancelled execution: %v %v", x, err)
	}
	if _, err := b.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: md.GetName()}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("cancelling a finished execution: %v", err)
	}
}

func TestCloudRunStopKillsExecutions(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{
		"sleeper": {Command: sh(`echo $$ > "$PIDFILE"; exec sleep 60`), Env: map[string]string{"PIDFILE": ""}},
	}})
	pidFile := filepath.Join(b.dir, "sleeper.pid")
	b.srv.SetJob("sleeper", runemu.JobSpec{Command: sh(`echo $$ > "$PIDFILE"; exec sleep 60`), Env: map[string]string{"PIDFILE": pidFile}})
	if _, err := b.jobs.RunJob(waitCtx(t), &runpb.RunJobRequest{Name: jobPath("sleeper")}); err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, pidFile)
	b.srv.Stop()
	assertGone(t, pid)
}

func TestCloudRunUnknownJobAndExecution(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{Jobs: map[string]runemu.JobSpec{"known": {Command: sh("exit 0"), Timeout: time.Minute}}})
	ctx := waitCtx(t)
	if _, err := b.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: jobPath("nope")}); status.Code(err) != codes.NotFound {
		t.Errorf("GetJob of an unknown job: %v", err)
	}
	if _, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("nope")}); status.Code(err) != codes.NotFound ||
		!strings.Contains(err.Error(), "nope") {
		t.Errorf("RunJob of an unknown job: %v", err)
	}
	if _, err := b.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: jobPath("known") + "/executions/known-zzzzz"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetExecution of an unknown execution: %v", err)
	}
	if _, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: "jobs/known"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RunJob of a bad name: %v", err)
	}
	job, err := b.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: jobPath("known")})
	if err != nil {
		t.Fatal(err)
	}
	tt := job.GetTemplate().GetTemplate()
	if job.GetName() != jobPath("known") || tt.GetTimeout().AsDuration() != time.Minute || tt.GetContainers()[0].GetArgs()[1] != "exit 0" {
		t.Errorf("GetJob: %v", job)
	}
}

func TestCloudRunLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := runemu.LoadConfig(write("ok.json", `{"jobs": {"nightly-export": {"command": ["go", "run", "./cmd/export"], "env": {"TARGET": "dev"}, "timeout": "10m"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if j := cfg.Jobs["nightly-export"]; len(j.Command) != 3 || j.Env["TARGET"] != "dev" || j.Timeout != 10*time.Minute {
		t.Errorf("config: %+v", cfg)
	}
	for name, body := range map[string]string{
		"typo.json":    `{"jobs": {"a": {"comand": ["x"]}}}`,
		"timeout.json": `{"jobs": {"a": {"command": ["x"], "timeout": "ten minutes"}}}`,
		"empty.json":   `{"jobs": {"a": {}}}`,
		"id.json":      `{"jobs": {"Nightly_Export": {"command": ["x"]}}}`,
	} {
		if _, err := runemu.LoadConfig(write(name, body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
