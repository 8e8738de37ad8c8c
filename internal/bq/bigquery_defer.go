package bq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/taskrun"

	"cloud.google.com/go/bigquery"

	"github.com/updraft-dev/updraft/internal/engine"
)

// bigQueryInlineLimit bounds one bigquery.query attempt in the push request: a submit
// (jobs.insert, a jobs.get on conflict) or a poke (jobs.get), and reading the results of a
// finished job (getQueryResults, at most max_rows rows within the XCom limit). The job itself
// runs outside it, for as long as the task's timeout allows.
const bigQueryInlineLimit = 3 * time.Minute

// deferBigQuery is a bigquery.query attempt of a try that waits in up_for_reschedule: the
// first one submits the job, the later ones poke it.
func deferBigQuery(ctx context.Context, tc *taskrun.Context, client *bigquery.Client, args *bqQuery) engine.Result {
	w := taskrun.NewWaiting(tc, 0)
	if ref, ok := w.Current(); ok {
		job, err := client.JobFromProject(ctx, ref.Project, ref.Name, ref.Location) // jobs.get
		if err != nil {
			if ctx.Err() != nil {
				return taskrun.Failed(nil, fmt.Sprintf("bigquery: reading job %s: %v", ref.Name, context.Cause(ctx)))
			}
			return taskrun.Failed(nil, fmt.Sprintf("bigquery: reading job %s: %s", ref.Name, describeError(err)))
		}
		return bigQueryStatus(ctx, tc, w, client, job, ref, args)
	}
	if old, ok := w.Earlier(); ok && old.Kind == engine.JobBigQuery {
		// An earlier try ended while its job ran (a lost worker, a failed poke): wait for that
		// job rather than running the query twice.
		job, err := client.JobFromProject(ctx, old.Project, old.Name, old.Location)
		if st := lastStatus(job, err); st != nil && (!st.Done() || st.Err() == nil) {
			if err := w.Save(ctx, old); err != nil {
				return taskrun.Failed(nil, "bigquery: "+err.Error())
			}
			tc.Log.Info(fmt.Sprintf("bigquery: try %d adopts job %s of try %d, which %s", tc.Ref.TryNumber, old.Name, old.Try, describeState(st)))
			old.Try = tc.Ref.TryNumber
			return bigQueryStatus(ctx, tc, w, client, job, old, args)
		}
	}
	q := buildQuery(client, args, tc.Ref.AttemptID)
	ref := engine.JobRef{Kind: engine.JobBigQuery, Project: args.project, Location: args.location, Name: q.JobID,
		Tag: tc.Ref.AttemptID, SubmittedAt: w.Now().UTC()}
	// Saved before the job exists: whoever comes next finds it by this id.
	if err := w.Save(ctx, ref); err != nil {
		return taskrun.Failed(nil, "bigquery: "+err.Error())
	}
	ref.Try = tc.Ref.TryNumber
	job, reattached, err := submit(ctx, client, q, args, tc.Log)
	if err != nil {
		if ctx.Err() != nil {
			cancelJob(ctx, client, q.JobID, args.location, tc.Log)
			return taskrun.Failed(nil, fmt.Sprintf("bigquery: the attempt was stopped while submitting job %s (%v); it was cancelled if BigQuery had it", q.JobID, context.Cause(ctx)))
		}
		return taskrun.Failed(nil, err.Error())
	}
	verb := "submitted"
	if reattached {
		verb = "re-attached to"
	}
	tc.Log.Info(fmt.Sprintf("bigquery: %s job %s: %s", verb, job.ID(), consoleURL(job, args.location)))
	// Saved again once the job exists (with the location it reports: jobs.get needs it outside
	// the US): a clear or mark that came between the first save and jobs.insert found no job to
	// cancel, and is caught here.
	if job.Location() != "" {
		ref.Location = job.Location()
	}
	if err := w.Save(ctx, ref); err != nil {
		cancelJob(ctx, client, job.ID(), job.Location(), tc.Log)
		return taskrun.Failed(nil, "bigquery: "+err.Error()+"; the job was cancelled")
	}
	return bigQueryStatus(ctx, tc, w, client, job, ref, args)
}

// lastStatus is a fetched job's status (nil when the fetch failed).
func lastStatus(job *bigquery.Job, err error) *bigquery.JobStatus {
	if err != nil || job == nil {
		return nil
	}
	return job.LastStatus()
}

func describeState(st *bigquery.JobStatus) string {
	switch {
	case st == nil:
		return "is unknown"
	case !st.Done():
		return "still runs"
	case st.Err() != nil:
		return "failed"
	}
	return "succeeded"
}

// bigQueryStatus decides from a job's last status: not done yet → the next poke (or, past
// the task's timeout, the job is cancelled and the attempt fails); failed → a failed
// attempt; done → its results.
func bigQueryStatus(ctx context.Context, tc *taskrun.Context, w taskrun.Waiting, client *bigquery.Client, job *bigquery.Job, ref engine.JobRef, args *bqQuery) engine.Result {
	st := job.LastStatus()
	if st == nil {
		return taskrun.Failed(nil, fmt.Sprintf("bigquery: job %s has no status", job.ID()))
	}
	if !st.Done() {
		if w.TimedOut() {
			ref.Cancelled = true
			if err := w.Save(ctx, ref); err != nil && !errors.Is(err, engine.ErrStale) {
				tc.Log.Warn("bigquery: could not mark job " + job.ID() + " cancelled: " + err.Error())
			}
			cancelJob(ctx, client, job.ID(), job.Location(), tc.Log)
			return taskrun.Failed(nil, fmt.Sprintf("bigquery: timed out after %s (the task's timeout) waiting for job %s, which was cancelled", tc.Task.Timeout, job.ID()))
		}
		res := w.PokeAfter(ref)
		tc.Log.Info(fmt.Sprintf("bigquery: job %s is %s after %s: next check at %s", job.ID(), stateName(st.State),
			w.Now().Sub(ref.SubmittedAt).Round(time.Second), res.RescheduleAt.UTC().Format(time.RFC3339)))
		return res
	}
	if err := st.Err(); err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("bigquery: job %s failed: %s", job.ID(), describeJobErrors(st)))
	}
	return bigQueryDone(ctx, tc, job, st, args)
}

func stateName(s bigquery.State) string {
	switch s {
	case bigquery.Pending:
		return "PENDING"
	case bigquery.Running:
		return "RUNNING"
	case bigquery.Done:
		return "DONE"
	}
	return "in an unknown state"
}

// CancelDeferred cancels a deferred bigquery.query job (for tasktypes.JobCanceller).
func CancelDeferred(ctx context.Context, getenv func(string) string, ref engine.JobRef) error {
	client, err := bigquery.NewClient(ctx, ref.Project, bigqueryOptions(getenv)...)
	if err != nil {
		return fmt.Errorf("bigquery: %w", err)
	}
	defer client.Close()
	job, err := client.JobFromProject(ctx, ref.Project, ref.Name, ref.Location)
	if isNotFound(err) {
		return nil // never submitted
	}
	if err != nil {
		return fmt.Errorf("bigquery: reading job %s: %s", ref.Name, describeError(err))
	}
	if st := job.LastStatus(); st != nil && st.Done() {
		return nil
	}
	if err := job.Cancel(ctx); err != nil {
		return fmt.Errorf("bigquery: cancelling job %s: %s", ref.Name, describeError(err))
	}
	return nil
}
