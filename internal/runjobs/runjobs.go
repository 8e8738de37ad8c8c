package runjobs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"golang.org/x/sync/singleflight"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// Environment variables Config reads.
const (
	// EnvEmulatorHost points the adapter at the Cloud Run stand-in (host:port, plain gRPC); it
	// is runemu.EnvVar.
	EnvEmulatorHost = "UPDRAFT_CLOUDRUN_EMULATOR_HOST"
	// EnvRegion is the region of the worker jobs (e.g. asia-northeast3).
	EnvRegion = "UPDRAFT_REGION"
	// EnvJobPrefix is the worker jobs' name prefix: the job of resource class C is PREFIX-C.
	EnvJobPrefix = "UPDRAFT_WORKER_JOB_PREFIX"
)

// DefaultJobPrefix names the worker jobs when EnvJobPrefix is unset: updraft-worker-small,
// updraft-worker-medium, …
const DefaultJobPrefix = "updraft-worker"

// Margin is added to a task's timeout to make its execution's timeout. The worker enforces
// the task's timeout itself (it cancels the task and records the failure); the execution's
// timeout is the backstop that kills a worker that could not, so it must leave the worker
// time to stop its task (SIGTERM, then SIGKILL 10 s later) and to record the outcome, whose
// writes are bounded at a minute. Five minutes covers that with room for a slow start.
const Margin = 5 * time.Minute

// MaxTimeout is the longest task timeout Cloud Run jobs allow (168 hours); longer ones are
// clamped to it.
const MaxTimeout = 168 * time.Hour

// Config says where the worker jobs are.
type Config struct {
	Project string
	Region  string
	// JobPrefix names the worker jobs (DefaultJobPrefix when empty).
	JobPrefix string
	// Endpoint is the stand-in's host:port, spoken to in plain gRPC without credentials;
	// empty for the real API at REGION-run.googleapis.com:443.
	Endpoint string
}

// ConfigFromEnv reads GOOGLE_CLOUD_PROJECT, UPDRAFT_REGION, UPDRAFT_WORKER_JOB_PREFIX and
// UPDRAFT_CLOUDRUN_EMULATOR_HOST. The region may be empty only with the stand-in (which
// accepts any location; "local" is used).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Project: getenv("GOOGLE_CLOUD_PROJECT"), Region: getenv(EnvRegion), JobPrefix: getenv(EnvJobPrefix),
		Endpoint: getenv(EnvEmulatorHost)}
	if c.Project == "" {
		return c, errors.New("runjobs: GOOGLE_CLOUD_PROJECT is not set")
	}
	if c.Region == "" {
		if c.Endpoint == "" {
			return c, fmt.Errorf("runjobs: %s is not set (the region of the worker jobs, e.g. asia-northeast3)", EnvRegion)
		}
		c.Region = "local"
	}
	return c, nil
}

// Executor starts worker executions and answers for them. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	jobs  *run.JobsClient
	execs *run.ExecutionsClient

	shaped   sync.Map           // resources → full name of its shaped job (shape.go)
	creating singleflight.Group // one first use of a shape at a time
}

var (
	_ engine.Executor = (*Executor)(nil)
	_ engine.Starter  = (*Executor)(nil)
)

// Open connects to the Cloud Run Admin API (or the stand-in) for cfg.
func Open(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.Project == "" || cfg.Region == "" {
		return nil, errors.New("runjobs: the project and the region are required")
	}
	if cfg.JobPrefix == "" {
		cfg.JobPrefix = DefaultJobPrefix
	}
	jobs, execs, err := clients(ctx, cfg.Endpoint, cfg.Region)
	if err != nil {
		return nil, fmt.Errorf("runjobs: connect: %w", err)
	}
	return &Executor{cfg: cfg, jobs: jobs, execs: execs}, nil
}

// clients connects to the Cloud Run Admin API of region, or to the local stand-in at
// endpoint (plain gRPC, no credentials) when it is set: the one client set-up of the worker
// jobs' Executor and the cloudrun.job task type.
func clients(ctx context.Context, endpoint, region string) (*run.JobsClient, *run.ExecutionsClient, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = []option.ClientOption{option.WithEndpoint(endpoint), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	} else {
		opts = []option.ClientOption{option.WithEndpoint(region + "-run.googleapis.com:443")}
	}
	jobs, err := run.NewJobsClient(ctx, opts...)
	if err != nil {
		return nil, nil, err
	}
	execs, err := run.NewExecutionsClient(ctx, opts...)
	if err != nil {
		jobs.Close()
		return nil, nil, err
	}
	return jobs, execs, nil
}

// Close releases the clients.
func (x *Executor) Close() error {
	return errors.Join(x.jobs.Close(), x.execs.Close())
}

// Job returns the full name of the worker job of a resource class ("" is dag.DefaultResources).
func (x *Executor) Job(resources string) string {
	if resources == "" {
		resources = "small"
	}
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s-%s", x.cfg.Project, x.cfg.Region, x.cfg.JobPrefix, resources)
}

// ExecutionTimeout is the execution timeout for a task timeout: the task's plus Margin,
// clamped to MaxTimeout; 0 (no task timeout) leaves the job's own.
func ExecutionTimeout(task time.Duration) time.Duration {
	if task <= 0 {
		return 0
	}
	return min(task+Margin, MaxTimeout)
}

// Start runs the worker job of a resource class or shape (shape.go) for one attempt: UPDRAFT_ATTEMPT carries the
// attempt, and the execution's timeout is ExecutionTimeout(timeout). It returns the
// execution's full name as soon as the API has named it (the operation's metadata), not when
// the execution finishes. An error wrapping engine.ErrCannotStart can't be fixed by another
// try; any other is transient.
func (x *Executor) Start(ctx context.Context, resources string, ref scheduler.AttemptRef, timeout time.Duration) (string, error) {
	job, err := x.jobFor(ctx, resources)
	if err != nil {
		return "", err
	}
	ov := &runpb.RunJobRequest_Overrides{ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{
		Env: []*runpb.EnvVar{{Name: tasks.EnvAttempt, Values: &runpb.EnvVar_Value{Value: tasks.EncodeAttempt(ref)}}},
	}}}
	if t := ExecutionTimeout(timeout); t > 0 {
		ov.Timeout = durationpb.New(t)
	}
	op, err := x.jobs.RunJob(ctx, &runpb.RunJobRequest{Name: job, Overrides: ov})
	if err != nil {
		return "", x.runErr(resources, job, err)
	}
	// The first answer normally names the execution already; poll the operation briefly if not.
	for i := 0; ; i++ {
		if m, err := op.Metadata(); err == nil && m.GetName() != "" {
			return m.GetName(), nil
		}
		if op.Done() || i == 10 {
			return "", fmt.Errorf("runjobs: run job %s: operation %s named no execution", job, op.Name())
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("runjobs: run job %s: %w", job, ctx.Err())
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		}
		if _, err := op.Poll(ctx); err != nil && !op.Done() {
			return "", fmt.Errorf("runjobs: poll %s: %w", op.Name(), err)
		}
	}
}

// Alive reports whether an execution still runs (it has no completion time). ref is an
// attempt's executor_ref: a full execution name, or the short one a worker reads from
// CLOUD_RUN_EXECUTION (resolved within this project and region: Cloud Run names an execution
// JOB-xxxxx). A reference of another kind (an inline run's) is unknown here, which counts as
// gone, as is an execution the API no longer knows.
func (x *Executor) Alive(ctx context.Context, ref string) (bool, error) {
	name, ok := x.resolve(ref)
	if !ok {
		return false, nil
	}
	e, err := x.execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("runjobs: get execution %s: %w", name, err)
	}
	return e.GetCompletionTime() == nil, nil
}

// Cancel cancels an execution; the worker gets SIGTERM, records what it can and exits. It
// does not wait. An execution that is gone or already finished needs nothing.
func (x *Executor) Cancel(ctx context.Context, ref string) error {
	name, ok := x.resolve(ref)
	if !ok {
		return nil
	}
	_, err := x.execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: name})
	switch status.Code(err) {
	case codes.OK, codes.NotFound, codes.FailedPrecondition:
		return nil
	}
	return fmt.Errorf("runjobs: cancel execution %s: %w", name, err)
}

var shortExecution = regexp.MustCompile(`^([a-z][a-z0-9-]*)-[a-z0-9]+$`)

// resolve turns an executor reference into a full execution name.
func (x *Executor) resolve(ref string) (string, bool) {
	if strings.HasPrefix(ref, "projects/") && strings.Contains(ref, "/executions/") {
		return ref, true
	}
	m := shortExecution.FindStringSubmatch(ref)
	if m == nil {
		return "", false
	}
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s/executions/%s", x.cfg.Project, x.cfg.Region, m[1], ref), true
}

// Permanent reports whether a gRPC code means another try can't succeed.
func Permanent(c codes.Code) bool {
	switch c {
	case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition, codes.Unauthenticated:
		return true
	}
	return false
}

// mapErr maps an SDK error once: permanent codes wrap engine.ErrCannotStart; the others
// (ResourceExhausted, Unavailable, DeadlineExceeded, Aborted, Internal, …) stay transient.
func mapErr(op string, err error) error {
	if c := status.Code(err); Permanent(c) {
		return fmt.Errorf("runjobs: %s: %w: %s: %s", op, engine.ErrCannotStart, c, status.Convert(err).Message())
	}
	return fmt.Errorf("runjobs: %s: %w", op, err)
}
