package taskrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// DagTrigger is the `dag.trigger` task type (Airflow's TriggerDagRunOperator): it starts a
// run of another DAG with conf and a logical date (by default this run's logical date and
// data interval, so the triggered run works on the same day's data). With
// wait_for_completion it then waits like a sensor, holding nothing between pokes, and fails
// if the run fails. The run id is derived from the logical date, so a retried or redelivered
// trigger finds its run instead of starting another. It runs inline.
func DagTrigger() Type {
	return Type{Name: "dag.trigger", Inline: true, Run: runDagTrigger, Check: checkDagRuns("dag.trigger", dagTriggerArgs)}
}

// SensorDagRun is the `sensor.dag_run` task type (Airflow's ExternalTaskSensor): it waits
// until another DAG's run for the same logical date (or the one given), or one task of it,
// reaches an allowed state, and fails when it reaches a failed one. It runs inline.
func SensorDagRun() Type {
	return Type{Name: "sensor.dag_run", Inline: true, Run: runSensorDagRun, Check: checkDagRuns("sensor.dag_run", sensorDagRunArgs)}
}

var (
	dagTriggerArgs   = []string{"dag_id", "conf", "logical_date", "wait_for_completion", "allowed_states", "failed_states"}
	sensorDagRunArgs = []string{"dag_id", "task_id", "logical_date", "allowed_states", "failed_states"}
	runStates        = []string{"queued", "running", "success", "failed"}
	taskStates       = []string{"none", "scheduled", "queued", "running", "success", "failed", "up_for_retry", "up_for_reschedule", "skipped", "upstream_failed"}
)

func checkDagRuns(typ string, known []string) func(map[string]any) []dag.ArgProblem {
	return func(with map[string]any) []dag.ArgProblem {
		ps := UnknownArgs(with, known)
		if s, ok := with["dag_id"].(string); !ok || strings.TrimSpace(s) == "" {
			ps = append(ps, dag.ArgProblem{Arg: "dag_id", Msg: fmt.Sprintf("a %s task needs with.dag_id: the other DAG's id", typ), Hint: "dag_id: marts_daily"})
		}
		if v, ok := with["conf"]; ok {
			if _, ok := v.(map[string]any); !ok {
				ps = append(ps, dag.ArgProblem{Arg: "conf", Msg: "conf must be a mapping (the triggered run's conf)", Hint: "conf: {date: '{{ .ds }}'}"})
			}
		}
		if v, ok := with["wait_for_completion"]; ok {
			if _, ok := v.(bool); !ok {
				ps = append(ps, dag.ArgProblem{Arg: "wait_for_completion", Msg: "wait_for_completion must be true or false"})
			}
		}
		valid := runStates
		if _, ok := with["task_id"]; ok {
			valid = taskStates
		}
		for _, k := range []string{"allowed_states", "failed_states"} {
			if v, ok := with[k]; ok {
				if _, err := stateList(v, valid); err != nil {
					ps = append(ps, dag.ArgProblem{Arg: k, Msg: k + " " + err.Error(), Hint: k + ": [success]"})
				}
			}
		}
		return ps
	}
}

func stateList(v any, valid []string) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		if s, ok := v.(string); ok {
			list = []any{s}
		} else {
			return nil, fmt.Errorf("must be a list of states, not %v", v)
		}
	}
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		if !slices.Contains(valid, s) {
			return nil, fmt.Errorf("has %v, which is not one of %s", x, strings.Join(valid, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

// targetDate reads with.logical_date (RFC 3339, or a date at midnight in the DAG's
// timezone); absent, it is this run's logical date. given says whether it was set.
func targetDate(tc *Context) (t time.Time, given bool, err error) {
	raw, ok := tc.Args["logical_date"]
	if !ok || raw == "" {
		return tc.Run.LogicalDate, false, nil
	}
	s, _ := raw.(string)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, tc.DAG.Location()); err == nil {
		return t.UTC(), true, nil
	}
	return time.Time{}, true, fmt.Errorf("logical_date %v is neither RFC 3339 nor a date (YYYY-MM-DD); try '{{ .logical_date }}'", raw)
}

func states(tc *Context, key string, def []string, valid []string) ([]string, error) {
	v, ok := tc.Args[key]
	if !ok {
		return def, nil
	}
	out, err := stateList(v, valid)
	if err != nil {
		return nil, fmt.Errorf("%s %v", key, err)
	}
	return out, nil
}

func runDagTrigger(ctx context.Context, tc *Context) engine.Result {
	target, _ := tc.Args["dag_id"].(string)
	logical, given, err := targetDate(tc)
	if err != nil {
		return Final("dag.trigger: " + err.Error())
	}
	conf, _ := tc.Args["conf"].(map[string]any)
	if v, ok := tc.Args["conf"]; ok && conf == nil {
		return Final(fmt.Sprintf("dag.trigger: conf must be a mapping, got %v", v))
	}
	allowed, err := states(tc, "allowed_states", []string{"success"}, runStates)
	if err != nil {
		return Final("dag.trigger: " + err.Error())
	}
	failedStates, err := states(tc, "failed_states", []string{"failed"}, runStates)
	if err != nil {
		return Final("dag.trigger: " + err.Error())
	}
	req := engine.TriggerRequest{DagID: target, Conf: conf, Logical: logical,
		By: tc.Ref.DagID + "/" + tc.Ref.RunID + "/" + tc.Ref.TaskID}
	if !given {
		req.Interval = &schedule.Interval{Start: tc.Run.IntervalStart, End: tc.Run.IntervalEnd}
	}
	run, created, err := tc.Runs.TriggerRun(ctx, req)
	if errors.Is(err, engine.ErrTriggerRefused) {
		return Final("dag.trigger: " + strings.TrimPrefix(err.Error(), engine.ErrTriggerRefused.Error()+": "))
	}
	if err != nil { // the store: another try may do
		return engine.Result{State: scheduler.AttemptFailed, Error: "dag.trigger: " + err.Error()}
	}
	if created {
		tc.Log.Info(fmt.Sprintf("triggered %s/%s", run.DagID, run.RunID))
	}
	xcom, _ := json.Marshal(map[string]any{"dag_id": run.DagID, "run_id": run.RunID, "logical_date": run.LogicalDate.Format(time.RFC3339)})
	wait, _ := tc.Args["wait_for_completion"].(bool)
	if !wait {
		return engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	}
	switch state := string(run.State); {
	case slices.Contains(allowed, state):
		return engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	case slices.Contains(failedStates, state):
		return engine.Result{State: scheduler.AttemptFailed, XCom: xcom,
			Error: fmt.Sprintf("dag.trigger: the triggered run %s/%s ended %s", run.DagID, run.RunID, state)}
	default:
		tc.Log.Info(fmt.Sprintf("waiting for %s/%s: it is %s", run.DagID, run.RunID, state))
		return engine.Result{State: scheduler.AttemptReschedule}
	}
}

func runSensorDagRun(ctx context.Context, tc *Context) engine.Result {
	target, _ := tc.Args["dag_id"].(string)
	taskID, _ := tc.Args["task_id"].(string)
	logical, _, err := targetDate(tc)
	if err != nil {
		return Final("sensor.dag_run: " + err.Error())
	}
	valid, defFailed := runStates, []string{"failed"}
	if taskID != "" {
		valid, defFailed = taskStates, []string{"failed", "upstream_failed"}
	}
	allowed, err := states(tc, "allowed_states", []string{"success"}, valid)
	if err != nil {
		return Final("sensor.dag_run: " + err.Error())
	}
	failedStates, err := states(tc, "failed_states", defFailed, valid)
	if err != nil {
		return Final("sensor.dag_run: " + err.Error())
	}
	what := fmt.Sprintf("the run of %s for %s", target, logical.Format(time.RFC3339))
	run, err := tc.Runs.RunAt(ctx, target, logical)
	if err != nil {
		return engine.Result{State: scheduler.AttemptFailed, Error: "sensor.dag_run: read " + what + ": " + err.Error()}
	}
	if run == nil {
		tc.Log.Info(what + " does not exist yet")
		return engine.Result{State: scheduler.AttemptReschedule}
	}
	state := string(run.State)
	if taskID != "" {
		what = fmt.Sprintf("task %s of %s/%s", taskID, run.DagID, run.RunID)
		st, err := tc.Runs.TaskState(ctx, run.DagID, run.RunID, taskID)
		if err != nil {
			return engine.Result{State: scheduler.AttemptFailed, Error: "sensor.dag_run: read " + what + ": " + err.Error()}
		}
		if st == "" {
			return Final(fmt.Sprintf("sensor.dag_run: %s/%s has no task %q", run.DagID, run.RunID, taskID))
		}
		state = string(st)
	} else {
		what = fmt.Sprintf("run %s/%s", run.DagID, run.RunID)
	}
	xcom, _ := json.Marshal(map[string]any{"dag_id": run.DagID, "run_id": run.RunID, "state": state})
	switch {
	case slices.Contains(allowed, state):
		tc.Log.Info(fmt.Sprintf("%s is %s", what, state))
		return engine.Result{State: scheduler.AttemptSuccess, XCom: xcom}
	case slices.Contains(failedStates, state):
		return engine.Result{State: scheduler.AttemptFailed, Error: fmt.Sprintf("sensor.dag_run: %s ended %s", what, state)}
	}
	tc.Log.Info(fmt.Sprintf("%s is %s; waiting for %s", what, state, strings.Join(allowed, " or ")))
	return engine.Result{State: scheduler.AttemptReschedule}
}
