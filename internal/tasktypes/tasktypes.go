// Package tasktypes puts the worker's task types together: the runtime's own
// (taskrun.Core) and the SDK-backed ones, each of which lives with its service's adapter:
// bigquery.query and sensor.bigquery_table in internal/bq, cloudrun.job in internal/runjobs,
// pubsub.publish in internal/psqueue/pspublish, slack.post in internal/slackapi/slackpost.
// It also cancels those types' deferred jobs for the engine (JobCanceller). The imports run
// one way: taskrun <- adapters <- tasktypes, so taskrun imports no cloud SDK for them.
package tasktypes

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/updraft-dev/updraft/internal/bq"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/psqueue/pspublish"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// Builtins returns a registry holding every built-in task type, for checking a DAG's
// arguments; a process that runs attempts uses WithQueue.
func Builtins() *taskrun.Registry { return WithQueue(nil) }

// WithQueue returns a registry holding every built-in task type, whose pubsub.publish
// publishes with q's client: the process's one Pub/Sub client (nil: a client per attempt).
func WithQueue(q *psqueue.Queue) *taskrun.Registry {
	r := taskrun.Core()
	r.Add(slackpost.SlackPost())
	r.Add(pspublish.PubSubPublish(q))
	r.Add(runjobs.CloudRunJob())
	r.Add(bq.BigQueryQuery())
	r.Add(bq.SensorBigQueryTable())
	return r
}

// JobCanceller cancels deferred tasks' jobs for the engine (clear, mark, dagrun_timeout):
// BigQuery jobs by id, Cloud Run executions by name, or found by their attempt tag.
type JobCanceller struct {
	// Getenv reads the emulator hosts and the default project and region (os.Getenv if nil).
	Getenv func(string) string
}

var _ engine.JobCanceller = JobCanceller{}

// CancelJob asks BigQuery or Cloud Run to cancel the job.
func (j JobCanceller) CancelJob(ctx context.Context, ref engine.JobRef) error {
	getenv := j.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	switch ref.Kind {
	case engine.JobBigQuery:
		return bq.CancelDeferred(ctx, getenv, ref)
	case engine.JobCloudRun:
		return runjobs.CancelDeferred(ctx, getenv, ref)
	}
	return fmt.Errorf("tasktypes: no way to cancel a job of kind %q", ref.Kind)
}

// jobCancelTimeout bounds cancelling one job from a cancel message.
const jobCancelTimeout = 30 * time.Second

// CancelRequested handles a task message that asks for a deferred task's job to be
// cancelled (scheduler.TaskMessage.CancelJob): the dispatchers call it where they would run
// an attempt. A malformed reference is a bad message.
func CancelRequested(ctx context.Context, msg scheduler.TaskMessage, getenv func(string) string) error {
	ref, ok := engine.ParseJobRef(msg.CancelJob)
	if !ok {
		return fmt.Errorf("%w: cancel_job %q is not a job reference", scheduler.ErrBadMessage, msg.CancelJob)
	}
	ctx, cancel := context.WithTimeout(ctx, jobCancelTimeout)
	defer cancel()
	if err := (JobCanceller{Getenv: getenv}).CancelJob(ctx, ref); err != nil {
		return fmt.Errorf("cancel the job of %s/%s/%s: %w", msg.DagID, msg.RunID, msg.TaskID, err)
	}
	return nil
}
