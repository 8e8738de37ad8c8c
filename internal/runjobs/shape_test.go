package runjobs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/runjobs"
)

// A task with resources {cpu: 4, memory: 8Gi} runs on a job of that shape, made on first use
// from the small job's template and reused: by a second task, and by another Dispatch
// instance (a new Executor), which finds it by its deterministic name.
func TestShapedTasksMakeOneJobAndReuseIt(t *testing.T) {
	t.Parallel()
	ran := filepath.Join(t.TempDir(), "ran")
	srv, err := runemu.Start(runemu.Config{Jobs: map[string]runemu.JobSpec{
		"updraft-worker-small": {Command: []string{"sh", "-c", `echo "$CLOUD_RUN_JOB" >> "$RAN"`}, Env: map[string]string{"RAN": ran},
			Limits: map[string]string{"cpu": "1", "memory": "512Mi"}},
	}, KillGrace: time.Second}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	d, err := dag.Parse("shaped.yaml", []byte(`id: shaped
owner: data@example.com
tasks:
  - {id: a, type: shell, with: {command: "true"}, resources: {cpu: 4, memory: 8Gi}}
  - {id: b, type: shell, with: {command: "true"}, resources: {cpu: 4, memory: 8Gi}}
`), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	open := func() *runjobs.Executor {
		x, err := runjobs.Open(context.Background(), runjobs.Config{Project: "p", Region: "r", Endpoint: srv.Addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		return x
	}
	ctx := context.Background()
	first, second := open(), open()
	var execs []string
	for i, x := range []*runjobs.Executor{first, first, second} {
		task := d.Tasks[min(i, 1)]
		r := ref
		r.TaskID, r.AttemptID = task.ID, "a"+string(rune('1'+i))
		name, err := x.Start(ctx, task.Resources, r, time.Minute)
		if err != nil {
			t.Fatalf("start %s: %v", task.ID, err)
		}
		execs = append(execs, name)
	}
	created := srv.Created()
	if len(created) != 1 || !strings.HasPrefix(created[0], "updraft-worker-c4-m8gi-") {
		t.Fatalf("jobs created %q, want one updraft-worker-c4-m8gi-*", created)
	}
	for _, e := range execs {
		if !strings.HasPrefix(e, "projects/p/locations/r/jobs/"+created[0]+"/executions/") {
			t.Errorf("execution %s is not of the shaped job %s", e, created[0])
		}
	}
	jobs, err := run.NewJobsClient(ctx, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	j, err := jobs.GetJob(ctx, &runpb.GetJobRequest{Name: "projects/p/locations/r/jobs/" + created[0]})
	if err != nil {
		t.Fatal(err)
	}
	if l := j.GetTemplate().GetTemplate().GetContainers()[0].GetResources().GetLimits(); l["cpu"] != "4" || l["memory"] != "8Gi" {
		t.Errorf("shaped job's limits %v, want cpu 4, memory 8Gi", l)
	}
	// Each execution ran the template's command once, as the shaped job.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(ran)
		lines := strings.Fields(string(b))
		if len(lines) == 3 {
			for _, l := range lines {
				if l != created[0] {
					t.Errorf("an execution ran as job %q", l)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("executions ran %d times, want 3: %q", len(lines), b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A class still runs its own job, and makes none.
	if name, err := first.Start(ctx, "small", ref, time.Minute); err != nil || !strings.Contains(name, "/jobs/updraft-worker-small/") {
		t.Errorf("class small: %s, %v", name, err)
	}
	// A shape Cloud Run refuses can't be started, and makes nothing.
	if _, err := first.Start(ctx, "cpu=3,memory=4Gi", ref, time.Minute); !errors.Is(err, engine.ErrCannotStart) || !strings.Contains(err.Error(), "cpu 3") {
		t.Errorf("cpu 3: %v, want ErrCannotStart naming cpu 3", err)
	}
	if n := len(srv.Created()); n != 1 {
		t.Errorf("%d jobs created, want 1", n)
	}
}
