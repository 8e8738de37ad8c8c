package functions

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
)

// Dispatcher handles the tasks topic's messages on GCP: the same decision as the local
// dispatcher (taskrun.Registry.Inline), with a Cloud Run job execution in place of a subprocess.
type Dispatcher struct {
	Engine   *engine.Engine
	Registry *taskrun.Registry
	// Worker runs inline types here, in the request: on Cloud Run a service has CPU only
	// while it answers one.
	Worker *taskrun.Worker
	// Jobs starts container types (a *runjobs.Executor).
	Jobs engine.Starter
	// Runner, when set, starts the container attempts that fit the warm runner service (a
	// *runjobs.Runner) in place of Jobs.
	Runner RunnerStarter
	Log    *slog.Logger
}

// RunnerStarter starts attempts on the warm runner service, for those it fits.
type RunnerStarter interface {
	// Fits reports whether an attempt runs on the runner, and if not, why.
	Fits(msg scheduler.TaskMessage) (bool, string)
	// For is the Starter that sends this message's attempt to the runner.
	For(msg scheduler.TaskMessage) engine.Starter
}

// Handle dispatches one task message. Inline types run to their recorded outcome before it
// returns (a duplicate or stale delivery is dropped by the claim). Container types start an
// execution unless one started by an earlier delivery still runs or the attempt is claimed;
// a start that can never succeed fails the attempt with the reason (the retry policy
// applies), a transient failure is returned for a redelivery.
func (d *Dispatcher) Handle(ctx context.Context, data []byte) error {
	msg, err := scheduler.DecodeTaskMessage(data)
	if err != nil {
		return err
	}
	if msg.CancelJob != "" {
		// A deferred task's job to cancel (clear, mark, dagrun_timeout): best effort, once; a
		// job that can't be cancelled runs to its end, and no try adopts it.
		if err := tasktypes.CancelRequested(context.WithoutCancel(ctx), msg, d.Worker.Getenv); err != nil {
			d.Log.Warn("could not cancel a deferred job", "attempt_id", msg.AttemptID, "dag_id", msg.DagID, "run_id", msg.RunID, "task_id", msg.TaskID, "error", err)
		}
		return nil
	}
	if d.Registry.Inline(msg) {
		// A dropped push connection must not cancel the task: the request's own timeout
		// still bounds it, and the outcome is recorded either way.
		if err := d.Worker.Execute(context.WithoutCancel(ctx), msg.AttemptRef); err != nil {
			d.Engine.NoteDispatchError(ctx, msg.AttemptRef, err) // the dead letter's reason, if it comes to that
			return fmt.Errorf("functions: dispatch %s inline: %w", msg.AttemptID, err)
		}
		return nil
	}
	starter, path, why := d.Jobs, "job", "no runner"
	if d.Runner != nil {
		if ok, reason := d.Runner.Fits(msg); ok {
			starter, path, why = d.Runner.For(msg), "runner", ""
		} else {
			why = reason
		}
	}
	rep, err := d.Engine.StartContainer(ctx, msg, starter)
	if err != nil {
		d.Engine.NoteDispatchError(ctx, msg.AttemptRef, err)
		return fmt.Errorf("functions: dispatch %s to the %s: %w", msg.AttemptID, path, err)
	}
	args := []any{"attempt_id", msg.AttemptID, "dag_id", msg.DagID, "run_id", msg.RunID, "task_id", msg.TaskID,
		"outcome", string(rep.Outcome), "path", path}
	if why != "" {
		args = append(args, "why_job", why)
	}
	switch rep.Outcome {
	case engine.StartedFailed:
		d.Log.Error("attempt failed: its execution can't be started", append(args, "error", rep.Reason)...)
	case engine.StartedNew:
		d.Log.Info("execution started", append(args, "execution", rep.Execution)...)
	default:
		d.Log.Info("nothing to start", append(args, "execution", rep.Execution)...)
	}
	return nil
}

// Advance handles the events topic for the advancer: the fast-follow of a task event
// (engine.HandleEvent), which finds nothing left to do when the worker already did it, a
// run's start, and the timer of a retry or poke due soon. The timer must outlive the push
// request, so the event is handled on a context that the request's end does not cancel; an
// instance that stops before the timer fires leaves the retry to the tick.
func Advance(eng *engine.Engine) Handle {
	return func(ctx context.Context, data []byte) error { return eng.HandleEvent(context.WithoutCancel(ctx), data) }
}

// Alerts handles the events topic for the Slack alerts (subscription updraft-events-alerts):
// Slack being slow or down never delays a task. Give the subscription an acknowledgement
// deadline of at least 120 s: an alert retries Slack within the delivery.
func Alerts(a *alerts.Alerter) Handle { return a.HandleEvent }
