package runemu_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
)

// CreateJob makes a job that runs its container's command with its limits recorded; a
// second create of the id and limits Cloud Run refuses are errors.
func TestCreateJob(t *testing.T) {
	t.Parallel()
	b := setup(t, runemu.Config{KillGrace: time.Second})
	ctx := context.Background()
	out := filepath.Join(b.dir, "out")
	job := func(cpu, memory string) *runpb.Job {
		return &runpb.Job{Template: &runpb.ExecutionTemplate{Template: &runpb.TaskTemplate{Containers: []*runpb.Container{{
			Command: []string{"/bin/sh", "-c"}, Args: []string{`echo "$WHO" > "$OUT"`},
			Env:       []*runpb.EnvVar{{Name: "WHO", Values: &runpb.EnvVar_Value{Value: "shaped"}}, {Name: "OUT", Values: &runpb.EnvVar_Value{Value: out}}},
			Resources: &runpb.ResourceRequirements{Limits: map[string]string{"cpu": cpu, "memory": memory}},
		}}}}}
	}
	parent := "projects/p1/locations/asia-northeast3"
	op, err := b.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "big", Job: job("4", "8Gi")})
	if err != nil {
		t.Fatal(err)
	}
	j, err := op.Wait(ctx)
	if err != nil || j.GetName() != jobPath("big") {
		t.Fatalf("create: %v, %v", j.GetName(), err)
	}
	got, err := b.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: jobPath("big")})
	if err != nil {
		t.Fatal(err)
	}
	if l := got.GetTemplate().GetTemplate().GetContainers()[0].GetResources().GetLimits(); l["cpu"] != "4" || l["memory"] != "8Gi" {
		t.Errorf("limits %v", l)
	}
	run, err := b.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: jobPath("big")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(out); strings.TrimSpace(string(data)) != "shaped" {
		t.Errorf("the job ran %q, want its command with its env", data)
	}
	if _, err := b.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "big", Job: job("4", "8Gi")}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	for _, lim := range [][2]string{{"4", "1Gi"}, {"3", "4Gi"}, {"1", "8Gi"}, {"2", "4GB"}} {
		_, err := b.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: "bad", Job: job(lim[0], lim[1])})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("cpu %s memory %s: %v, want InvalidArgument", lim[0], lim[1], err)
		}
	}
	if c := b.srv.Created(); len(c) != 1 || c[0] != "big" {
		t.Errorf("created %q, want [big]", c)
	}
}
