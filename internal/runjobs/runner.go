package runjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Environment variables RunnerConfigFromEnv reads (Dispatch's).
const (
	// EnvRunnerTopic is the topic whose push subscription feeds the warm runner service;
	// empty: there is no runner and every container attempt runs in a job.
	EnvRunnerTopic = "UPDRAFT_RUNNER_TOPIC"
	// EnvRunnerShape is one attempt's share of a runner instance as cpu=N,memory=M
	// (dag.Shape's form; default cpu=1,memory=512Mi, the small class's): a task whose
	// resources exceed it runs in a job.
	EnvRunnerShape = "UPDRAFT_RUNNER_SHAPE"
	// EnvRunnerClasses are the resource classes the runner stands in for, comma-separated
	// (default small): a task of another class runs in its class's job.
	EnvRunnerClasses = "UPDRAFT_RUNNER_CLASSES"
	// EnvRunnerMaxTimeout is the longest task timeout sent to the runner (default and at
	// most RunnerMaxTimeout).
	EnvRunnerMaxTimeout = "UPDRAFT_RUNNER_MAX_TIMEOUT"
)

// The runner's topic and its push subscription (Terraform makes them: infra/pubsub.tf, whose
// test reads these names). The subscription dead-letters to updraft-tasks-dead.
const (
	RunnerTopic        = "updraft-runner"
	RunnerSubscription = "updraft-runner-push"
)

// RunnerMaxTimeout is the longest task timeout the runner takes. An attempt runs inside one
// Pub/Sub push request, whose timeout is the subscription's acknowledgement deadline, at
// most 600 s: 9 minutes leaves a minute for the claim, the task's stop (SIGTERM, then
// SIGKILL 10 s later) and the result's writes. A task without a timeout, or a longer one,
// runs in a job: time never bounds a task but its own timeout.
const RunnerMaxTimeout = 9 * time.Minute

// RunnerRefPrefix starts the name StartContainer records for an attempt sent to the runner.
const RunnerRefPrefix = "runner-push:"

// RunnerPending is how long a start on the runner counts as live (Alive): longer than the
// push subscription's 600 s acknowledgement deadline, so a delivery in progress is never
// duplicated, and past the tick's republication of unclaimed attempts (5 minutes).
const RunnerPending = 15 * time.Minute

// RunnerConfig says where the warm runner is and what fits it.
type RunnerConfig struct {
	Project string
	// Topic feeds the runner (its push subscription, OIDC, ack deadline 600 s).
	Topic string
	// Shape is one attempt's share of a runner instance; Classes the resource classes it
	// stands in for.
	Shape   dag.Shape
	Classes []string
	// MaxTimeout is the longest task timeout it takes (≤ RunnerMaxTimeout).
	MaxTimeout time.Duration
}

// RunnerConfigFromEnv reads GOOGLE_CLOUD_PROJECT and the UPDRAFT_RUNNER_* variables. ok is
// false when UPDRAFT_RUNNER_TOPIC is unset (no runner). Errors name the variable to fix.
func RunnerConfigFromEnv(getenv func(string) string) (c RunnerConfig, ok bool, err error) {
	c = RunnerConfig{Project: getenv("GOOGLE_CLOUD_PROJECT"), Topic: getenv(EnvRunnerTopic),
		Shape: dag.Shape{CPU: 1, MemoryMiB: 512}, Classes: []string{dag.DefaultResources}, MaxTimeout: RunnerMaxTimeout}
	if c.Topic == "" {
		return c, false, nil
	}
	if c.Project == "" {
		return c, false, errors.New("runjobs: GOOGLE_CLOUD_PROJECT is not set")
	}
	if v := getenv(EnvRunnerShape); v != "" {
		s, ok := dag.ParseShape(v)
		if !ok {
			return c, false, fmt.Errorf("runjobs: %s=%q is not a shape like cpu=1,memory=2Gi", EnvRunnerShape, v)
		}
		c.Shape = s
	}
	if v, set := getenv(EnvRunnerClasses), getenv(EnvRunnerClasses) != ""; set {
		c.Classes = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Classes = append(c.Classes, p)
			}
		}
	}
	if v := getenv(EnvRunnerMaxTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > RunnerMaxTimeout {
			return c, false, fmt.Errorf("runjobs: %s=%q is not a duration from 1s to %s (a push request lasts at most 600 s)", EnvRunnerMaxTimeout, v, RunnerMaxTimeout)
		}
		c.MaxTimeout = d
	}
	return c, true, nil
}

// Fits reports whether a container attempt runs on the runner, and if not, why. It runs
// there unless the task forces `executor: job`, has no timeout or a longer one than
// MaxTimeout, or asks for resources the runner has not (a class it does not stand in for,
// or a shape with more cpu or memory than its own).
func (c RunnerConfig) Fits(msg scheduler.TaskMessage) (bool, string) {
	switch timeout := time.Duration(msg.TimeoutSeconds) * time.Second; {
	case msg.Executor == "job":
		return false, "executor: job"
	case timeout <= 0:
		return false, "no timeout (the runner takes tasks with a timeout of at most " + c.MaxTimeout.String() + ")"
	case timeout > c.MaxTimeout:
		return false, fmt.Sprintf("timeout %s is over the runner's %s", timeout, c.MaxTimeout)
	}
	res := msg.Resources
	if res == "" {
		res = dag.DefaultResources
	}
	if s, ok := dag.ParseShape(res); ok {
		if s.CPU > c.Shape.CPU || s.MemoryMiB > c.Shape.MemoryMiB {
			return false, fmt.Sprintf("resources %s exceed the runner's %s", s, c.Shape)
		}
		return true, ""
	}
	if !slices.Contains(c.Classes, res) {
		return false, fmt.Sprintf("resource class %s is not one the runner stands in for (%s)", res, strings.Join(c.Classes, ", "))
	}
	return true, ""
}

// Runner starts attempts on the warm runner service: For(msg).Start publishes the task
// message to the runner's topic, whose push subscription delivers it until the runner
// acknowledges it (after running it, or finding it claimed) or dead-letters it. It is safe
// for concurrent use.
type Runner struct {
	cfg    RunnerConfig
	client *pubsub.Client
	pub    *pubsub.Publisher
}

var _ engine.Starter = runnerStart{}

// OpenRunner connects to Pub/Sub (PUBSUB_EMULATOR_HOST locally) for cfg.
func OpenRunner(ctx context.Context, cfg RunnerConfig, opts ...option.ClientOption) (*Runner, error) {
	c, err := pubsub.NewClient(ctx, cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("runjobs: runner topic: %w", err)
	}
	p := c.Publisher(cfg.Topic)
	p.PublishSettings.CountThreshold = 1 // one attempt at a time: no batching delay
	p.PublishSettings.DelayThreshold = time.Millisecond
	return &Runner{cfg: cfg, client: c, pub: p}, nil
}

// Close flushes and releases the client.
func (r *Runner) Close() error {
	r.pub.Stop()
	return r.client.Close()
}

// Fits is the config's Fits.
func (r *Runner) Fits(msg scheduler.TaskMessage) (bool, string) { return r.cfg.Fits(msg) }

// For is the Starter of one task message: its Start publishes that message (the JSON the
// tasks topic carries) to the runner's topic, so a message the runner can never handle
// dead-letters to updraft-tasks-dead like Dispatch's and the tick fails its task with the
// reason.
func (r *Runner) For(msg scheduler.TaskMessage) engine.Starter { return runnerStart{r: r, msg: msg} }

type runnerStart struct {
	r   *Runner
	msg scheduler.TaskMessage
}

// Start publishes the message and names the start after it and its time
// (runner-push:MESSAGE_ID@UNIX_MILLIS). A topic
// that does not exist, or may not be published to, can't be fixed by another try.
func (s runnerStart) Start(ctx context.Context, _ string, ref scheduler.AttemptRef, _ time.Duration) (string, error) {
	msg := s.msg
	msg.AttemptRef = ref
	data, err := json.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("runjobs: encode the task message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := s.r.pub.Publish(ctx, &pubsub.Message{
		Data:       data,
		Attributes: map[string]string{"attempt_id": ref.AttemptID, "dag_id": ref.DagID, "task_id": ref.TaskID},
	}).Get(ctx)
	if err != nil {
		if c := status.Code(err); c == codes.NotFound || c == codes.PermissionDenied {
			return "", fmt.Errorf("runjobs: publish to the runner topic %s: %w: %v", s.r.cfg.Topic, engine.ErrCannotStart, err)
		}
		return "", fmt.Errorf("runjobs: publish to the runner topic %s: %w", s.r.cfg.Topic, err)
	}
	return RunnerRefPrefix + id + "@" + strconv.FormatInt(time.Now().UnixMilli(), 10), nil
}

// Alive reports whether a start is recent: published less than RunnerPending ago. Pub/Sub
// keeps delivering a published message until the runner acknowledges it, and the runner
// acknowledges only what it ran or found claimed (or a message it can never run), so a
// recent start is as good as a running execution: a redelivery of the same Dispatch message
// publishes nothing more. An older one that is still unclaimed (the tick republishes it) may
// have been lost (a topic without its subscription drops messages), so it is published
// again; the second delivery then finds the attempt claimed, or claims it. A duplicate costs
// one empty request, never a second run.
func (s runnerStart) Alive(_ context.Context, name string) (bool, error) {
	_, at, ok := strings.Cut(strings.TrimPrefix(name, RunnerRefPrefix), "@")
	if !strings.HasPrefix(name, RunnerRefPrefix) || !ok {
		return false, nil
	}
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return false, nil
	}
	return time.Since(time.UnixMilli(ms)) < RunnerPending, nil
}
