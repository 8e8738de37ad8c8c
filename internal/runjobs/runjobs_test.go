package runjobs_test

import (
	"context"
	"errors"
	"net"
	"path"
	"strings"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

var ref = scheduler.AttemptRef{DagID: "d", RunID: "manual__x", TaskID: "t", TryNumber: 1, AttemptID: "a1"}

// setup starts a stand-in with a worker job of class "small" that runs until cancelled.
func setup(t *testing.T) (*runemu.Server, *runjobs.Executor, *run.ExecutionsClient) {
	t.Helper()
	srv, err := runemu.Start(runemu.Config{Jobs: map[string]runemu.JobSpec{
		"updraft-worker-small": {Command: []string{"sleep", "600"}},
	}, KillGrace: time.Second}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	x, err := runjobs.Open(context.Background(), runjobs.Config{Project: "p", Region: "r", Endpoint: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	execs, err := run.NewExecutionsClient(context.Background(), option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { execs.Close() })
	return srv, x, execs
}

// waitGone polls until the executor no longer sees the execution run (bounded).
func waitGone(t *testing.T, x *runjobs.Executor, ref string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		alive, err := x.Alive(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs", ref)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartRunsTheClassJobWithTheAttemptAndTheTimeoutMargin(t *testing.T) {
	t.Parallel()
	_, x, execs := setup(t)
	ctx := context.Background()
	name, err := x.Start(ctx, "small", ref, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "projects/p/locations/r/jobs/updraft-worker-small/executions/updraft-worker-small-") {
		t.Fatalf("execution %q", name)
	}
	e, err := execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	c := e.GetTemplate().GetContainers()[0]
	var attempt string
	for _, ev := range c.GetEnv() {
		if ev.GetName() == tasks.EnvAttempt {
			attempt = ev.GetValue()
		}
	}
	if got, err := tasks.DecodeAttempt(attempt); err != nil || got != ref {
		t.Fatalf("UPDRAFT_ATTEMPT decodes to %+v (%v); want %+v", got, err, ref)
	}
	if got := e.GetTemplate().GetTimeout().AsDuration(); got != 30*time.Minute+runjobs.Margin {
		t.Fatalf("execution timeout %s; want the task's 30m + %s", got, runjobs.Margin)
	}

	// Alive answers for the full name and for the short one a worker reads from
	// CLOUD_RUN_EXECUTION; Cancel stops it.
	for _, r := range []string{name, path.Base(name)} {
		if alive, err := x.Alive(ctx, r); err != nil || !alive {
			t.Fatalf("Alive(%s) = %v, %v; want true", r, alive, err)
		}
	}
	if err := x.Cancel(ctx, path.Base(name)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, x, name)
	if err := x.Cancel(ctx, name); err != nil {
		t.Fatalf("cancelling a finished execution: %v; want nothing to do", err)
	}
}

func TestUnknownExecutionsCountAsGone(t *testing.T) {
	t.Parallel()
	_, x, _ := setup(t)
	for _, r := range []string{"local:123:456", "function:rev:host:1", "nowhere", "updraft-worker-small-zzzzz",
		"projects/p/locations/r/jobs/updraft-worker-small/executions/updraft-worker-small-zzzzz"} {
		if alive, err := x.Alive(context.Background(), r); err != nil || alive {
			t.Errorf("Alive(%q) = %v, %v; want false, nil", r, alive, err)
		}
		if err := x.Cancel(context.Background(), r); err != nil {
			t.Errorf("Cancel(%q) = %v; want nil", r, err)
		}
	}
}

func TestErrorsArePermanentOrTransientByCode(t *testing.T) {
	t.Parallel()
	_, x, _ := setup(t)
	ctx := context.Background()
	_, err := x.Start(ctx, "huge", ref, 0) // no such job: NotFound
	if !errors.Is(err, engine.ErrCannotStart) || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("missing job: %v; want ErrCannotStart with the code", err)
	}

	// Nobody listens: Unavailable, which another delivery may fix.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	down, err := runjobs.Open(ctx, runjobs.Config{Project: "p", Region: "r", Endpoint: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	_, err = down.Start(ctx, "small", ref, 0)
	if err == nil || errors.Is(err, engine.ErrCannotStart) {
		t.Fatalf("stand-in down: %v; want a transient error", err)
	}
	if _, err := down.Alive(ctx, "updraft-worker-small-abcde"); err == nil {
		t.Fatal("Alive with the API down answered; want an error (can't tell)")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, err := runjobs.ConfigFromEnv(getenv); err == nil || !strings.Contains(err.Error(), "GOOGLE_CLOUD_PROJECT") {
		t.Fatalf("no project: %v", err)
	}
	env["GOOGLE_CLOUD_PROJECT"] = "p"
	if _, err := runjobs.ConfigFromEnv(getenv); err == nil || !strings.Contains(err.Error(), runjobs.EnvRegion) {
		t.Fatalf("no region on GCP: %v", err)
	}
	env[runjobs.EnvEmulatorHost] = "127.0.0.1:1"
	c, err := runjobs.ConfigFromEnv(getenv)
	if err != nil || c.Region != "local" {
		t.Fatalf("stand-in without region: %+v %v", c, err)
	}
	if runjobs.EnvEmulatorHost != runemu.EnvVar {
		t.Fatalf("%s != runemu.EnvVar %s", runjobs.EnvEmulatorHost, runemu.EnvVar)
	}
	if got := runjobs.ExecutionTimeout(0); got != 0 {
		t.Fatalf("no task timeout → %s; want the job's own (0)", got)
	}
	if got := runjobs.ExecutionTimeout(200 * time.Hour); got != runjobs.MaxTimeout {
		t.Fatalf("200h → %s; want clamped to %s", got, runjobs.MaxTimeout)
	}
}
