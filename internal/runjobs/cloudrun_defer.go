package runjobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/updraft-dev/updraft/internal/taskrun"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

const (
	// cloudRunInlineLimit bounds one cloudrun.job attempt in the push request: a submit (a
	// lookup by tag, RunJob) or a poke (GetExecution), and copying a finished execution's
	// container output. The execution itself runs outside it, for as long as the task's
	// timeout allows.
	cloudRunInlineLimit = 2 * time.Minute
	// EnvAttemptTag is the variable every cloudrun.job execution gets: the id of the attempt
	// that started it, so a later attempt finds it (ListExecutions) instead of starting another.
	EnvAttemptTag = "UPDRAFT_ATTEMPT_ID"
	// maxTagLookup bounds the executions a lookup by tag reads (newest first).
	maxTagLookup = 300
)

// deferCloudRun is a cloudrun.job attempt of a try that waits in up_for_reschedule: the first
// one starts the execution (tagged with its attempt id), the later ones poke it.
func deferCloudRun(ctx context.Context, tc *taskrun.Context, req *cloudRunRequest, jobs *run.JobsClient, execs *run.ExecutionsClient) engine.Result {
	w := taskrun.NewWaiting(tc, req.poll)
	if ref, ok := w.Current(); ok {
		if ref.Execution == "" {
			// The attempt that saved the reference died before it saved the execution's name.
			x, err := findTagged(ctx, execs, ref)
			if err != nil {
				return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: looking up the execution of %s tagged %s: %v", ref.Name, ref.Tag, err))
			}
			if x == nil {
				return startCloudRun(ctx, tc, w, req, jobs, ref)
			}
			ref.Execution = x.GetName()
			if err := w.Save(ctx, ref); err != nil {
				return taskrun.Failed(nil, "cloudrun.job: "+err.Error())
			}
			tc.Log.Info(fmt.Sprintf("found execution %s by its tag %s", ref.Execution, ref.Tag))
			return cloudRunStatus(ctx, tc, w, execs, x, ref)
		}
		x, err := execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: ref.Execution})
		if err != nil {
			return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: reading execution %s: %v", ref.Execution, err))
		}
		return cloudRunStatus(ctx, tc, w, execs, x, ref)
	}
	if old, ok := w.Earlier(); ok && old.Kind == engine.JobCloudRun && old.Name == req.job {
		// An earlier try ended while its execution ran (a lost worker, a failed poke): wait for
		// that execution rather than running the job twice.
		x, err := executionOf(ctx, execs, old)
		if err == nil && x != nil {
			done, res := executionResult(x)
			if !done || res.State == scheduler.AttemptSuccess {
				tc.Log.Info(fmt.Sprintf("try %d adopts execution %s of try %d", tc.Ref.TryNumber, x.GetName(), old.Try))
				old.Execution = x.GetName()
				if err := w.Save(ctx, old); err != nil {
					return taskrun.Failed(nil, "cloudrun.job: "+err.Error())
				}
				old.Try = tc.Ref.TryNumber
				return cloudRunStatus(ctx, tc, w, execs, x, old)
			}
		}
	}
	ref := engine.JobRef{Kind: engine.JobCloudRun, Location: req.region, Name: req.job, Tag: tc.Ref.AttemptID,
		SubmittedAt: w.Now().UTC()}
	if m := cloudRunJobName.FindStringSubmatch(req.job); m != nil {
		ref.Project = m[1]
	}
	// Saved before the execution exists: whoever comes next finds it by its tag.
	if err := w.Save(ctx, ref); err != nil {
		return taskrun.Failed(nil, "cloudrun.job: "+err.Error())
	}
	ref.Try = tc.Ref.TryNumber
	return startCloudRun(ctx, tc, w, req, jobs, ref)
}

// startCloudRun runs the job once for ref, tagged with ref.Tag, and saves the execution's name.
func startCloudRun(ctx context.Context, tc *taskrun.Context, w taskrun.Waiting, req *cloudRunRequest, jobs *run.JobsClient, ref engine.JobRef) engine.Result {
	op, err := jobs.RunJob(ctx, tagged(req.run, ref.Tag))
	if err != nil {
		return runJobError(ctx, req.job, err)
	}
	md, err := op.Metadata()
	if err != nil || md.GetName() == "" {
		return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: RunJob %s returned operation %s without its execution (%v); the next try finds it by its tag %s", req.job, op.Name(), err, ref.Tag))
	}
	ref.Execution = md.GetName()
	tc.Log.Info(fmt.Sprintf("started Cloud Run execution %s (tag %s; logs: %s)", ref.Execution, ref.Tag, md.GetLogUri()))
	if err := w.Save(ctx, ref); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cloudRunCancelTimeout)
		defer cancel()
		_ = CancelDeferred(cctx, tc.Getenv, ref)
		return taskrun.Failed(nil, "cloudrun.job: "+err.Error()+"; the execution was cancelled")
	}
	return cloudRunStatus(ctx, tc, w, nil, md, ref)
}

// tagged is the RunJob request with the attempt tag in the (first) container's environment.
func tagged(r *runpb.RunJobRequest, tag string) *runpb.RunJobRequest {
	out := &runpb.RunJobRequest{Name: r.GetName(), Overrides: &runpb.RunJobRequest_Overrides{}}
	if o := r.GetOverrides(); o != nil {
		out.Overrides.Timeout, out.Overrides.TaskCount = o.GetTimeout(), o.GetTaskCount()
		for _, c := range o.GetContainerOverrides() {
			cc := &runpb.RunJobRequest_Overrides_ContainerOverride{Name: c.GetName(), Args: c.GetArgs(), ClearArgs: c.GetClearArgs(),
				Env: append([]*runpb.EnvVar(nil), c.GetEnv()...)}
			out.Overrides.ContainerOverrides = append(out.Overrides.ContainerOverrides, cc)
		}
	}
	if len(out.Overrides.ContainerOverrides) == 0 {
		out.Overrides.ContainerOverrides = []*runpb.RunJobRequest_Overrides_ContainerOverride{{}}
	}
	first := out.Overrides.ContainerOverrides[0]
	first.Env = append(first.Env, &runpb.EnvVar{Name: EnvAttemptTag, Values: &runpb.EnvVar_Value{Value: tag}})
	return out
}

// tagOf is the attempt tag an execution carries in its environment ("" when none).
func tagOf(x *runpb.Execution) string {
	for _, c := range x.GetTemplate().GetContainers() {
		for _, e := range c.GetEnv() {
			if e.GetName() == EnvAttemptTag {
				return e.GetValue()
			}
		}
	}
	return ""
}

// findTagged finds the execution of ref's job tagged with ref.Tag: executions are listed
// newest first, and none older than the reference (less a minute of clock skew) is read.
func findTagged(ctx context.Context, execs *run.ExecutionsClient, ref engine.JobRef) (*runpb.Execution, error) {
	it := execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: ref.Name, PageSize: 100})
	oldest := ref.SubmittedAt.Add(-time.Minute)
	for n := 0; n < maxTagLookup; n++ {
		x, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if tagOf(x) == ref.Tag {
			return x, nil
		}
		if ct := x.GetCreateTime(); ct != nil && !ref.SubmittedAt.IsZero() && ct.AsTime().Before(oldest) {
			return nil, nil
		}
	}
	return nil, nil
}

// executionOf reads ref's execution, by name or by tag (nil when there is none).
func executionOf(ctx context.Context, execs *run.ExecutionsClient, ref engine.JobRef) (*runpb.Execution, error) {
	if ref.Execution == "" {
		return findTagged(ctx, execs, ref)
	}
	x, err := execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: ref.Execution})
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	return x, err
}

// cloudRunStatus decides from an execution's state: running → the next poke (or, past the
// task's timeout, the execution is cancelled and the attempt fails); finished → its result,
// with its container output copied into the attempt's log.
func cloudRunStatus(ctx context.Context, tc *taskrun.Context, w taskrun.Waiting, _ *run.ExecutionsClient, x *runpb.Execution, ref engine.JobRef) engine.Result {
	done, res := executionResult(x)
	if !done {
		if w.TimedOut() {
			ref.Cancelled = true
			if err := w.Save(ctx, ref); err != nil && !errors.Is(err, engine.ErrStale) {
				tc.Log.Warn("could not mark execution " + ref.Execution + " cancelled: " + err.Error())
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cloudRunCancelTimeout)
			defer cancel()
			defer copyContainerOutput(ctx, tc, x) // what it wrote until now
			if err := CancelDeferred(cctx, tc.Getenv, ref); err != nil {
				return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: timed out after %s (the task's timeout) waiting for execution %s; cancelling it failed: %v", tc.Task.Timeout, ref.Execution, err))
			}
			return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: timed out after %s (the task's timeout) waiting for execution %s, which was cancelled", tc.Task.Timeout, ref.Execution))
		}
		next := w.PokeAfter(ref)
		tc.Log.Info(fmt.Sprintf("execution %s runs (%s so far): next check at %s", x.GetName(),
			w.Now().Sub(ref.SubmittedAt).Round(time.Second), next.RescheduleAt.UTC().Format(time.RFC3339)))
		return next
	}
	copyContainerOutput(ctx, tc, x) // cloudrun.go
	if res.State == scheduler.AttemptSuccess {
		tc.Log.Info(fmt.Sprintf("execution %s succeeded", x.GetName()))
	}
	return res
}

// CancelDeferred cancels a deferred cloudrun.job execution (for tasktypes.JobCanceller and the
// task's timeout), found by name or by tag. One already finished or gone needs nothing.
func CancelDeferred(ctx context.Context, getenv func(string) string, ref engine.JobRef) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	jobs, execs, err := cloudRunClients(ctx, getenv, ref.Location)
	if err != nil {
		return fmt.Errorf("cloudrun.job: connect: %w", err)
	}
	defer jobs.Close()
	defer execs.Close()
	name := ref.Execution
	if name == "" {
		x, err := findTagged(ctx, execs, ref)
		if err != nil {
			return fmt.Errorf("cloudrun.job: looking up the execution tagged %s: %w", ref.Tag, err)
		}
		if x == nil {
			return nil
		}
		name = x.GetName()
	}
	_, err = execs.CancelExecution(ctx, &runpb.CancelExecutionRequest{Name: name})
	switch status.Code(err) {
	case codes.OK, codes.NotFound, codes.FailedPrecondition:
		return nil
	}
	return fmt.Errorf("cloudrun.job: cancelling execution %s: %w", name, err)
}
