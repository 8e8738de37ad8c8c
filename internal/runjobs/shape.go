package runjobs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
)

// TemplateClass is the worker class whose job (PREFIX-small, made by Terraform) is the
// template of the shaped jobs: a shaped job is that job with the shape's cpu and memory
// limits, so it runs the same image, as the same service account, with the same environment.
const TemplateClass = dag.DefaultResources

// ShapeLabel is the label a shaped job carries: the shape's slug (c4-m8gi).
const ShapeLabel = "updraft-shape"

// readyWait bounds how long a Start waits for a shaped job another Dispatch is creating.
const readyWait = time.Minute

// jobFor returns the full name of the job that runs resources: a class's job, or for a shape
// (dag.ParseShape) the job of that shape, made from the template job on first use and reused
// after. Its name is deterministic, PREFIX-SLUG-HASH: the slug names the shape, the hash is
// of the template with the shape applied, so every Dispatch instance finds the same job, and
// a new template (a deploy with a new image) makes new jobs rather than running old ones.
func (x *Executor) jobFor(ctx context.Context, resources string) (string, error) {
	shape, ok := dag.ParseShape(resources)
	if !ok {
		return x.Job(resources), nil
	}
	if v, ok := x.shaped.Load(resources); ok {
		return v.(string), nil
	}
	v, err, _ := x.creating.Do(resources, func() (any, error) { return x.ensureShaped(ctx, shape) })
	if err != nil {
		return "", err
	}
	x.shaped.Store(resources, v.(string))
	return v.(string), nil
}

func (x *Executor) ensureShaped(ctx context.Context, shape dag.Shape) (string, error) {
	if err := shape.Check(); err != nil {
		return "", fmt.Errorf("runjobs: resources %s: %w: %v", shape, engine.ErrCannotStart, err)
	}
	base, err := x.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: x.Job(TemplateClass)})
	if err != nil {
		return "", mapErr("get the template job "+x.Job(TemplateClass), err)
	}
	tmpl, ok := proto.Clone(base.GetTemplate()).(*runpb.ExecutionTemplate)
	if !ok || len(tmpl.GetTemplate().GetContainers()) != 1 {
		return "", fmt.Errorf("runjobs: template job %s: %w: it must have exactly one container", base.GetName(), engine.ErrCannotStart)
	}
	// System annotations are output only on create.
	for k := range tmpl.GetAnnotations() {
		if strings.HasPrefix(k, "run.googleapis.com/") {
			delete(tmpl.Annotations, k)
		}
	}
	c := tmpl.Template.Containers[0]
	if c.Resources == nil {
		c.Resources = &runpb.ResourceRequirements{}
	}
	c.Resources.Limits = map[string]string{"cpu": strconv.Itoa(shape.CPU), "memory": shape.Memory()}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tmpl)
	if err != nil {
		return "", fmt.Errorf("runjobs: template job %s: %w", base.GetName(), err)
	}
	sum := sha256.Sum256(b)
	id := fmt.Sprintf("%s-%s-%x", x.cfg.JobPrefix, shape.Slug(), sum[:4])
	parent := fmt.Sprintf("projects/%s/locations/%s", x.cfg.Project, x.cfg.Region)
	name := parent + "/jobs/" + id

	_, err = x.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	switch status.Code(err) {
	case codes.OK:
		return name, x.waitReady(ctx, name)
	case codes.NotFound:
	default:
		return "", mapErr("get job "+name, err)
	}
	op, err := x.jobs.CreateJob(ctx, &runpb.CreateJobRequest{Parent: parent, JobId: id, Job: &runpb.Job{
		Labels: map[string]string{ShapeLabel: shape.Slug()}, LaunchStage: base.GetLaunchStage(), Template: tmpl,
	}})
	if status.Code(err) == codes.AlreadyExists { // another Dispatch made it meanwhile
		return name, x.waitReady(ctx, name)
	}
	if err != nil {
		return "", mapErr("create job "+name, err)
	}
	if _, err := op.Wait(ctx); err != nil {
		return "", fmt.Errorf("runjobs: create job %s: %w", name, err)
	}
	return name, nil
}

// waitReady waits (bounded) until a job's terminal condition says it is ready: one another
// Dispatch is creating can't run yet.
func (x *Executor) waitReady(ctx context.Context, name string) error {
	deadline := time.Now().Add(readyWait)
	for i := 0; ; i++ {
		j, err := x.jobs.GetJob(ctx, &runpb.GetJobRequest{Name: name})
		if err != nil {
			return mapErr("get job "+name, err)
		}
		switch j.GetTerminalCondition().GetState() {
		case runpb.Condition_CONDITION_SUCCEEDED:
			return nil
		case runpb.Condition_CONDITION_FAILED:
			return fmt.Errorf("runjobs: job %s: %w: %s", name, engine.ErrCannotStart, j.GetTerminalCondition().GetMessage())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("runjobs: job %s is not ready after %s", name, readyWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runjobs: job %s: %w", name, ctx.Err())
		case <-time.After(time.Duration(min(i+1, 10)) * 100 * time.Millisecond):
		}
	}
}

// runErr maps RunJob's error. A shaped job that is gone (deleted by hand) is forgotten and
// the error is transient: the next try makes it again.
func (x *Executor) runErr(resources, job string, err error) error {
	if _, shaped := dag.ParseShape(resources); shaped && status.Code(err) == codes.NotFound {
		x.shaped.Delete(resources)
		return fmt.Errorf("runjobs: run job %s: it is gone; the next try makes it again: %w", job, err)
	}
	return mapErr("run job "+job, err)
}
