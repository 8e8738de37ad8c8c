package runjobs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/joblogs"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

const (
	// cloudRunRegionEnv is the deployment's region, the default for a job given by id.
	cloudRunRegionEnv = EnvRegion
	// cloudRunProjectEnv is the deployment's project, the default for a job given by id.
	cloudRunProjectEnv = "GOOGLE_CLOUD_PROJECT"
	// defaultCloudRunPoll is how often a cloudrun.job task reads its execution.
	defaultCloudRunPoll = 5 * time.Second
	// cloudRunCancelTimeout bounds the best-effort cancel after the task's timeout.
	cloudRunCancelTimeout = 30 * time.Second
	// cloudRunOutputTimeout bounds copying an execution's container output into the log.
	cloudRunOutputTimeout = 30 * time.Second
)

// CloudRunJob is the `cloudrun.job` task type (Airflow's CloudRunExecuteJobOperator, the
// serverless DockerOperator): it runs a user's own Cloud Run job, with args, env and timeout
// overridden for this run, polls the execution until it finishes and fails with its status.
//
//	with:
//	  job: nightly-export        # a job id, or projects/P/locations/L/jobs/J
//	  region: asia-northeast3    # default $UPDRAFT_REGION (not needed with a full name)
//	  project: my-project        # default $GOOGLE_CLOUD_PROJECT
//	  args: [--date, "{{ .ds }}"]   # replace the container's args ([] clears them)
//	  env: {TARGET: "orders_{{ .ds_nodash }}"}   # merged into the container's env
//	  timeout: 30m               # the execution's task timeout
//	  poll_interval: 5s          # the first interval between pokes (then up to poke_interval)
//
// One short inline attempt starts the execution (tagged with the attempt id, see
// cloudrun_defer.go); the task then waits in up_for_reschedule and each later attempt reads
// the execution once. The task's timeout bounds the whole wait; when it passes, the execution
// is cancelled. Called without a claim to hold the execution (Context.Job nil), it waits
// inline instead.
func CloudRunJob() taskrun.Type {
	return taskrun.Type{Name: "cloudrun.job", Inline: true, Run: runCloudRunJob, Check: checkCloudRunJob,
		InlineLimit: cloudRunInlineLimit, InlineCleanup: cloudRunCancelTimeout}
}

var cloudRunArgs = []string{"job", "region", "project", "args", "env", "timeout", "poll_interval"}

var (
	cloudRunJobName = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)$`)
	// cloudRunJobID is Cloud Run's rule for a job's name.
	cloudRunJobID = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// cloudRunRegion is the shape of a GCP region; the region becomes part of the endpoint's
	// host name, so nothing else may pass.
	cloudRunRegion = regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`)
)

func cloudRunTemplated(s string) bool { return strings.Contains(s, "{{") }

func checkCloudRunJob(with map[string]any) []dag.ArgProblem {
	ps := taskrun.UnknownArgs(with, cloudRunArgs)
	job, ok := with["job"].(string)
	switch {
	case !ok || strings.TrimSpace(job) == "":
		ps = append(ps, dag.ArgProblem{Arg: "job", Msg: "a cloudrun.job task needs with.job", Hint: "job: nightly-export (or projects/P/locations/REGION/jobs/nightly-export)"})
	case cloudRunTemplated(job):
	case strings.Contains(job, "/") && !cloudRunJobName.MatchString(job):
		ps = append(ps, dag.ArgProblem{Arg: "job", Msg: fmt.Sprintf("job %q is neither a job id nor projects/PROJECT/locations/REGION/jobs/JOB", job)})
	case !strings.Contains(job, "/") && !cloudRunJobID.MatchString(job):
		ps = append(ps, dag.ArgProblem{Arg: "job", Msg: fmt.Sprintf("job %q is not a Cloud Run job name", job), Hint: "lowercase letters, digits and hyphens, starting with a letter, at most 63 characters"})
	}
	for _, k := range []string{"region", "project"} {
		if v, ok := with[k]; ok {
			s, ok := v.(string)
			switch {
			case !ok || strings.TrimSpace(s) == "":
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: k + " must be a non-empty string"})
			case k == "region" && !cloudRunTemplated(s) && !cloudRunRegion.MatchString(s):
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("%q is not a region", s), Hint: "region: asia-northeast3"})
			}
		}
	}
	if v, ok := with["args"]; ok {
		if _, err := cloudRunArgList(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "args", Msg: err.Error(), Hint: `args: [--date, "{{ .ds }}"]`})
		}
	}
	if v, ok := with["env"]; ok {
		if _, err := cloudRunEnvMap(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "env", Msg: err.Error(), Hint: `env: {TARGET: "orders_{{ .ds_nodash }}"}`})
		}
	}
	for _, k := range []string{"timeout", "poll_interval"} {
		v, ok := with[k]
		if !ok {
			continue
		}
		if s, isStr := v.(string); isStr && cloudRunTemplated(s) {
			continue
		}
		if _, err := cloudRunDuration(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("%s: %v", k, err), Hint: k + ": 10m"})
		}
	}
	return ps
}

// cloudRunArgList reads a list of scalars (YAML may give numbers) as strings.
func cloudRunArgList(v any) ([]string, error) {
	var items []any
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		items = x
	default:
		return nil, fmt.Errorf("args must be a list of strings, not %T", v)
	}
	out := make([]string, 0, len(items))
	for i, e := range items {
		switch e.(type) {
		case string, int, int64, float64, bool:
			out = append(out, fmt.Sprint(e))
		default:
			return nil, fmt.Errorf("args[%d] must be a string, not %T", i, e)
		}
	}
	return out, nil
}

// cloudRunEnvMap reads a mapping of names to scalars as strings.
func cloudRunEnvMap(v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		if s, ok := v.(map[string]string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("env must be a mapping of names to values, not %T", v)
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		switch e.(type) {
		case string, int, int64, float64, bool:
			out[k] = fmt.Sprint(e)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("env.%s must be a string, not %T", k, e)
		}
	}
	return out, nil
}

// cloudRunDuration reads a positive duration: a string as DAG files write durations, or a number
// of seconds.
func cloudRunDuration(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = dag.ParseDuration(x); err != nil {
			return 0, err
		}
	case int:
		d = time.Duration(x) * time.Second
	case int64:
		d = time.Duration(x) * time.Second
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return 0, fmt.Errorf("not a duration: %v", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, not %v", v)
	}
	return d, nil
}

// cloudRunRequest is a cloudrun.job task's rendered arguments, read.
type cloudRunRequest struct {
	job, region string
	run         *runpb.RunJobRequest
	poll        time.Duration
}

func readCloudRunArgs(a map[string]any, getenv func(string) string) (*cloudRunRequest, error) {
	r := &cloudRunRequest{poll: defaultCloudRunPoll}
	job, _ := a["job"].(string)
	job = strings.TrimSpace(job)
	region, _ := a["region"].(string)
	project, _ := a["project"].(string)
	if m := cloudRunJobName.FindStringSubmatch(job); m != nil {
		if project != "" && project != m[1] || region != "" && region != m[2] {
			return nil, fmt.Errorf("job %s names project %s and region %s; with.project and with.region must agree or be left out", job, m[1], m[2])
		}
		r.job, r.region = job, m[2]
		if !cloudRunRegion.MatchString(r.region) {
			return nil, fmt.Errorf("job %s: %q is not a region like asia-northeast3", job, r.region)
		}
	} else {
		if job == "" || strings.Contains(job, "/") {
			return nil, fmt.Errorf("job %q is neither a job id nor projects/PROJECT/locations/REGION/jobs/JOB", job)
		}
		if region == "" {
			region = getenv(cloudRunRegionEnv)
		}
		if project == "" {
			project = getenv(cloudRunProjectEnv)
		}
		if region == "" {
			return nil, fmt.Errorf("job %s is given by id and no region is set: give with.region, set %s, or write projects/PROJECT/locations/REGION/jobs/%s", job, cloudRunRegionEnv, job)
		}
		if !cloudRunRegion.MatchString(region) {
			return nil, fmt.Errorf("region %q is not a region like asia-northeast3", region)
		}
		if project == "" {
			return nil, fmt.Errorf("job %s is given by id and no project is set: give with.project, set %s, or write projects/PROJECT/locations/REGION/jobs/%s", job, cloudRunProjectEnv, job)
		}
		r.job, r.region = fmt.Sprintf("projects/%s/locations/%s/jobs/%s", project, region, job), region
	}
	r.run = &runpb.RunJobRequest{Name: r.job}
	var over runpb.RunJobRequest_Overrides_ContainerOverride
	overridden := false
	if v, ok := a["args"]; ok {
		args, err := cloudRunArgList(v)
		if err != nil {
			return nil, err
		}
		over.Args, over.ClearArgs = args, len(args) == 0
		overridden = true
	}
	if v, ok := a["env"]; ok {
		env, err := cloudRunEnvMap(v)
		if err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			over.Env = append(over.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: env[k]}})
		}
		overridden = overridden || len(env) > 0
	}
	var overrides runpb.RunJobRequest_Overrides
	if overridden {
		overrides.ContainerOverrides = []*runpb.RunJobRequest_Overrides_ContainerOverride{&over}
	}
	if v, ok := a["timeout"]; ok {
		d, err := cloudRunDuration(v)
		if err != nil {
			return nil, fmt.Errorf("timeout: %v", err)
		}
		overrides.Timeout = durationpb.New(d)
	}
	if overrides.ContainerOverrides != nil || overrides.Timeout != nil {
		r.run.Overrides = &overrides
	}
	if v, ok := a["poll_interval"]; ok {
		d, err := cloudRunDuration(v)
		if err != nil {
			return nil, fmt.Errorf("poll_interval: %v", err)
		}
		r.poll = d
	}
	return r, nil
}

// cloudRunClients connects the cloudrun.job type to the Cloud Run Admin API of region, or to
// the local stand-in: the Executor's own set-up (clients).
func cloudRunClients(ctx context.Context, getenv func(string) string, region string) (*run.JobsClient, *run.ExecutionsClient, error) {
	return clients(ctx, getenv(EnvEmulatorHost), region)
}

func runCloudRunJob(ctx context.Context, tc *taskrun.Context) engine.Result {
	getenv := tc.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	req, err := readCloudRunArgs(tc.Args, getenv)
	if err != nil {
		return taskrun.Final("cloudrun.job: " + err.Error())
	}
	// Not ctx: the clients must still cancel the execution after the task's timeout, and a
	// client's credentials may keep the context they were created with.
	jobs, execs, err := cloudRunClients(context.WithoutCancel(ctx), getenv, req.region)
	if err != nil {
		return taskrun.Failed(nil, "cloudrun.job: connect to the Cloud Run Admin API: "+err.Error())
	}
	defer jobs.Close()
	defer execs.Close()
	if tc.Job != nil && tc.Ref.AttemptID != "" && !taskrun.InContainer(tc) {
		return deferCloudRun(ctx, tc, req, jobs, execs) // cloudrun_defer.go
	}

	// Without a claim to hold the execution between pokes (a direct call), wait inline.
	op, err := jobs.RunJob(ctx, req.run)
	if err != nil {
		return runJobError(ctx, req.job, err)
	}
	md, err := op.Metadata()
	if err != nil || md.GetName() == "" {
		return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: RunJob %s returned operation %s without its execution (%v)", req.job, op.Name(), err))
	}
	name := md.GetName()
	tc.Log.Info(fmt.Sprintf("started Cloud Run execution %s (logs: %s)", name, md.GetLogUri()))

	ticker := time.NewTicker(req.poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			defer copyContainerOutput(ctx, tc, md)
			return cancelExecution(ctx, execs, name)
		case <-ticker.C:
		}
		x, err := execs.GetExecution(ctx, &runpb.GetExecutionRequest{Name: name})
		if err != nil {
			if ctx.Err() != nil {
				continue // the task's timeout: cancel at the top of the loop
			}
			switch status.Code(err) {
			case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.ResourceExhausted, codes.Aborted:
				tc.Log.Warn(fmt.Sprintf("reading execution %s: %v; trying again in %s", name, err, req.poll))
				continue
			}
			return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: reading execution %s: %v", name, err))
		}
		if done, res := executionResult(x); done {
			copyContainerOutput(ctx, tc, x)
			if res.State == scheduler.AttemptSuccess {
				tc.Log.Info(fmt.Sprintf("execution %s succeeded", name))
			}
			return res // the worker logs a failure's error
		}
	}
}

// copyContainerOutput copies a finished (or cancelled) execution's container output into
// the attempt's log, masked and bounded as the log is (internal/joblogs).
func copyContainerOutput(ctx context.Context, tc *taskrun.Context, x *runpb.Execution) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cloudRunOutputTimeout)
	defer cancel()
	getenv := tc.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	logMax, _ := taskrun.ParseLogMaxBytes(getenv(taskrun.EnvLogMaxBytes)) // the worker refused a bad one
	// The zero time reads from the start of the log's retention.
	var started time.Time
	if t := x.GetStartTime(); t != nil {
		started = t.AsTime()
	} else if t := x.GetCreateTime(); t != nil {
		started = t.AsTime()
	}
	err := joblogs.Copy(cctx, getenv, joblogs.Execution{Name: x.GetName(), Started: started, LogURI: x.GetLogUri()}, logMax,
		func(l joblogs.Line) {
			switch l.Severity {
			case "ERROR", "CRITICAL", "ALERT", "EMERGENCY":
				tc.Log.Error(l.String())
			case "WARNING":
				tc.Log.Warn(l.String())
			default:
				tc.Log.Info(l.String())
			}
		})
	if err != nil {
		tc.Log.Warn(fmt.Sprintf("the container output of %s was not copied: %v; it is at %s", x.GetName(), err, x.GetLogUri()))
	}
}

// runJobError turns a failed RunJob into a result: what no retry can fix is final.
func runJobError(ctx context.Context, job string, err error) engine.Result {
	if ctx.Err() != nil {
		return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: %v before execution of %s started: %v", context.Cause(ctx), job, err))
	}
	switch status.Code(err) {
	case codes.NotFound:
		return taskrun.Final(fmt.Sprintf("cloudrun.job: job %s does not exist (deploy it, or check job, region and project): %v", job, err))
	case codes.InvalidArgument:
		return taskrun.Final(fmt.Sprintf("cloudrun.job: RunJob %s: %v", job, err))
	case codes.PermissionDenied:
		return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: RunJob %s: %v (the worker's service account needs run.jobs.run, and run.jobs.runWithOverrides for args, env or timeout: roles/run.developer on the job)", job, err))
	}
	return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: RunJob %s: %v", job, err))
}

// cancelExecution cancels an execution, best effort, once the task's context has ended.
func cancelExecution(ctx context.Context, execs *run.ExecutionsClient, name string) engine.Result {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cloudRunCancelTimeout)
	defer cancel()
	cause := context.Cause(ctx)
	if _, err := execs.CancelExecution(cctx, &runpb.CancelExecutionRequest{Name: name}); err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: %v; cancelling execution %s failed: %v", cause, name, err))
	}
	return taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: %v; execution %s cancelled", cause, name))
}

// executionResult reports whether an execution has finished and, if so, the attempt's result:
// success when a task succeeded and the Completed condition says so.
func executionResult(x *runpb.Execution) (bool, engine.Result) {
	var c *runpb.Condition
	for _, cond := range x.GetConditions() {
		if cond.GetType() == "Completed" {
			c = cond
		}
	}
	terminal := c.GetState() == runpb.Condition_CONDITION_SUCCEEDED || c.GetState() == runpb.Condition_CONDITION_FAILED
	if x.GetCompletionTime() == nil && !(terminal && x.GetRunningCount() == 0) {
		return false, engine.Result{}
	}
	if x.GetSucceededCount() >= 1 && c.GetState() == runpb.Condition_CONDITION_SUCCEEDED {
		xcom, _ := json.Marshal(map[string]string{"execution": x.GetName(), "log_uri": x.GetLogUri()})
		return true, engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	}
	msg := c.GetMessage()
	if msg == "" {
		msg = "no Completed condition message (state " + c.GetState().String() + ")"
	}
	return true, taskrun.Failed(nil, fmt.Sprintf("cloudrun.job: execution %s failed: %s (tasks: %d succeeded, %d failed, %d cancelled of %d); logs: %s",
		x.GetName(), msg, x.GetSucceededCount(), x.GetFailedCount(), x.GetCancelledCount(), x.GetTaskCount(), x.GetLogUri()))
}
