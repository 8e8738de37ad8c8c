package taskrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/render"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// Worker executes attempts.
type Worker struct {
	Engine   *engine.Engine
	Registry *Registry
	// Name identifies this worker in attempt documents (host:pid, or the execution name).
	Name string
	// ExecutorRef is how the executor knows this worker (a pid, a Cloud Run execution).
	ExecutorRef string
	// LogDir keeps a log file per attempt when set (local runs).
	LogDir string
	// Stdout receives the structured log lines (os.Stdout in a worker process).
	Stdout io.Writer
	Log    *slog.Logger
	// NewResolver makes the secret resolver of one attempt (nil: secrets unavailable).
	NewResolver func() SecretResolver
	// Getenv reads the environment for task types (os.Getenv when nil).
	Getenv func(string) string

	bundles bundles // the bundle cache, from the environment on first use
}

// SecretResolver is what a worker needs of secrets: the types' Resolver, variable overrides
// (`updraft-variables-NAME` secrets), and every value resolved, to mask them.
type SecretResolver interface {
	Resolver
	Variable(ctx context.Context, name string) (value string, ok bool, err error)
	Values() []string
}

// Execute runs one attempt end to end. It returns nil when the attempt's outcome was
// recorded (whatever it was) or when the delivery was a duplicate or stale and was dropped,
// and an error when the outcome could not be recorded (the store did not answer within the
// engine's retries): the process then exits non-zero, and the attempt is left to the tick.
//
// Nothing but the task's own timeout bounds how long it runs: every write to the store (the
// claim, each lease renewal, the result) has its own short deadline, taken when it starts,
// and the lease is renewed every third of engine.Config.Lease (UPDRAFT_LEASE) for as long
// as the task runs. A renewal that finds the attempt is no longer this worker's (cleared,
// timed out with its run, declared lost) stops the task, whose result would not stand.
//
// The attempt's log is bounded by UPDRAFT_LOG_MAX_BYTES (read here, through Getenv; bytes,
// or a number with KiB, MiB or GiB; DefaultLogMaxBytes when unset).
func (w *Worker) Execute(ctx context.Context, ref scheduler.AttemptRef) error {
	return w.ExecuteAs(ctx, ref, w.ExecutorRef)
}

// ExecuteAs is Execute with the executor reference of this one attempt (a warm worker runs
// many attempts, each known to the executor by its own reference).
func (w *Worker) ExecuteAs(ctx context.Context, ref scheduler.AttemptRef, executorRef string) error {
	getenv := w.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	logMax, err := ParseLogMaxBytes(getenv(EnvLogMaxBytes))
	if err != nil {
		return err
	}
	logRef := ""
	if w.LogDir != "" {
		logRef = "file:" + tasks.LogPath(w.LogDir, ref)
	}
	claim, err := w.Engine.Claim(ctx, ref, engine.Worker{Name: w.Name, ExecutorRef: executorRef, LogRef: logRef})
	if errors.Is(err, engine.ErrDuplicate) || errors.Is(err, engine.ErrStale) {
		w.Log.Info("attempt dropped", "attempt_id", ref.AttemptID, "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", ref.AttemptID, err)
	}
	// The result is recorded even when the worker is being stopped (SIGTERM cancels ctx);
	// each of Finish's writes takes its own deadline.
	finishCtx := context.WithoutCancel(ctx)
	finish := func(res engine.Result) error {
		err := claim.Finish(finishCtx, res)
		if errors.Is(err, engine.ErrStale) {
			w.Log.Warn("result recorded on the attempt only", "attempt_id", ref.AttemptID, "reason", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("record the result of attempt %s (%s): %w", ref.AttemptID, res.State, err)
		}
		return nil
	}
	logger, err := tasks.NewLogger(w.Stdout, w.LogDir, ref)
	if err != nil {
		return finish(Failed(nil, "worker: open log: "+err.Error()))
	}
	logger.SetMaxBytes(logMax)
	defer logger.Close()

	// runCtx ends the task early when the attempt stops being this worker's.
	runCtx, stopRun := context.WithCancelCause(ctx)
	defer stopRun(nil)
	leaseCtx, stopLease := context.WithCancel(ctx)
	leaseDone := make(chan struct{})
	go func() {
		defer close(leaseDone)
		t := time.NewTicker(claim.LeaseInterval())
		defer t.Stop()
		for {
			select {
			case <-leaseCtx.Done():
				return
			case <-t.C:
				err := claim.Renew(leaseCtx)
				switch {
				case leaseCtx.Err() != nil:
					return
				case errors.Is(err, engine.ErrStale):
					w.Log.Warn("the attempt is no longer this worker's: stopping its task", "attempt_id", ref.AttemptID, "reason", err)
					stopRun(fmt.Errorf("stopped: %w", err))
					return
				case err != nil:
					w.Log.Warn("lease renewal failed; retrying at the next renewal", "attempt_id", ref.AttemptID, "error", err)
				}
			}
		}
	}()

	res := w.run(runCtx, claim, logger)
	stopLease()
	<-leaseDone
	if res.State == scheduler.AttemptFailed {
		logger.Error(res.Error)
	}
	return finish(res)
}

// EnvLogMaxBytes names the variable that bounds an attempt's log (see Execute).
const EnvLogMaxBytes = "UPDRAFT_LOG_MAX_BYTES"

// ParseLogMaxBytes reads UPDRAFT_LOG_MAX_BYTES: a number of bytes, or a number followed by
// KiB, MiB or GiB; "" is DefaultLogMaxBytes.
func ParseLogMaxBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return tasks.DefaultLogMaxBytes, nil
	}
	num, mult := s, int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, suffix)), m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult || n*mult < tasks.MinLogMaxBytes {
		return 0, fmt.Errorf("%s=%q: want a number of bytes of at least %d, optionally with KiB, MiB or GiB (e.g. 16MiB)",
			EnvLogMaxBytes, s, tasks.MinLogMaxBytes)
	}
	return n * mult, nil
}

// xcomTooLarge is the failure of a task whose XCom value is over engine.MaxXComBytes.
func xcomTooLarge(n int) engine.Result {
	return Final(fmt.Sprintf("XCom of %d KiB is over the %d KiB limit: write large results to a table (bigquery.query's destination) or a file, and pass its name on",
		n>>10, engine.MaxXComBytes>>10))
}

func (w *Worker) run(ctx context.Context, claim *engine.Claim, logger *tasks.Logger) (res engine.Result) {
	typ, err := w.Registry.Lookup(claim.Task.Type)
	if err != nil {
		return Final(err.Error())
	}
	var resolver SecretResolver = noSecrets{}
	if w.NewResolver != nil {
		resolver = w.NewResolver()
	}
	logger.SetMask(resolver.Values)
	defer func() { // whatever happened, no secret leaves in the result
		res.Error = render.Mask(res.Error, resolver.Values())
		if len(res.XCom) > 0 {
			res.XCom = json.RawMessage(render.MaskJSON(res.XCom, resolver.Values()))
			if len(res.XCom) > engine.MaxXComBytes {
				res = xcomTooLarge(len(res.XCom))
			}
		}
	}()
	ctx, root, err := w.fetchBundle(ctx, claim, logger)
	if err != nil {
		return bundleFailure(err)
	}
	if claim.Task.ForEach != nil {
		return w.expand(ctx, claim, resolver, logger)
	}
	args, err := w.renderArgs(ctx, claim, resolver)
	if err != nil {
		return Final(err.Error())
	}
	// Masked before it is encoded: JSON would escape a secret holding & < > " \ otherwise.
	if b, err := json.Marshal(render.MaskValue(args, resolver.Values())); err == nil {
		res.Rendered = render.Mask(string(b), resolver.Values())
	}
	runCtx := ctx
	if claim.Task.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, claim.Task.Timeout,
			fmt.Errorf("timed out after %s (the task's timeout)", claim.Task.Timeout))
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			res = Failed(nil, fmt.Sprintf("task type %s panicked: %v", claim.Task.Type, p))
		}
	}()
	logger.Info(fmt.Sprintf("running %s.%s try %d of %d (attempt %s)", claim.Ref.DagID, claim.Ref.TaskID,
		claim.Ref.TryNumber, claim.MaxTries(), claim.Ref.AttemptID))
	getenv := w.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	rendered := res.Rendered
	res = typ.Run(runCtx, &Context{Ref: claim.Ref, Task: claim.Task, DAG: claim.DAG, Run: claim.Run, MaxTries: claim.MaxTries(), Log: logger,
		Args: args, Secrets: resolver, Getenv: getenv, Now: w.Engine.Now, Runs: w.Engine, Job: claim, Bundle: root})
	res.Rendered = rendered
	return res
}

// renderArgs renders the task's `with` over the run's context.
func (w *Worker) renderArgs(ctx context.Context, claim *engine.Claim, resolver SecretResolver) (map[string]any, error) {
	if len(claim.Task.With) == 0 {
		return map[string]any{}, nil
	}
	with, err := bundleWith(ctx, claim.Task)
	if err != nil {
		return nil, err
	}
	data, funcs, err := w.templateEnv(ctx, claim, resolver, with)
	if err != nil {
		return nil, err
	}
	out, err := render.Render(with, data, funcs)
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// expand evaluates a for_each task's list (a literal, whose strings are templates, or one
// template yielding a list) and records it as the result; the engine then creates one
// instance per item.
func (w *Worker) expand(ctx context.Context, claim *engine.Claim, resolver SecretResolver, logger *tasks.Logger) engine.Result {
	where := fmt.Sprintf("for_each of task %s", claim.Task.ID)
	data, funcs, err := w.templateEnv(ctx, claim, resolver, claim.Task.ForEach)
	if err != nil {
		return Final(where + ": " + err.Error())
	}
	var v any
	switch fe := claim.Task.ForEach.(type) {
	case string:
		v, err = render.Value(fe, "for_each", data, funcs)
	default:
		v, err = render.Render(fe, data, funcs)
	}
	if err != nil {
		return Final(where + ": " + err.Error())
	}
	list, ok := v.([]any)
	if !ok {
		b, _ := json.Marshal(v)
		return Final(fmt.Sprintf("%s must be a list, got %s (write a YAML list, or a template such as '{{ xcom \"list_tables\" }}' whose value is a list)",
			where, TruncateText(string(b), 200)))
	}
	if len(list) > scheduler.MaxMapLength {
		return Final(fmt.Sprintf("%s: %d items is over the limit of %d instances per task: pass batches (a list of lists) instead",
			where, len(list), scheduler.MaxMapLength))
	}
	b, err := json.Marshal(list)
	if err != nil {
		return Final(fmt.Sprintf("%s: the list is not JSON: %v", where, err))
	}
	logger.Info(fmt.Sprintf("for_each: %d instances %s[0] … %s[%d]", len(list), claim.Task.ID, claim.Task.ID, max(len(list)-1, 0)))
	return engine.Result{State: scheduler.AttemptSuccess, XCom: b}
}

func TruncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// env reads the worker's environment (Getenv, or os.Getenv when nil).
func (w *Worker) env(name string) string {
	if w.Getenv != nil {
		return w.Getenv(name)
	}
	return os.Getenv(name)
}

// templateEnv builds the template context and functions of an attempt. uses is what will be
// rendered (only a template mentioning prev_data_interval_start_success pays for its read).
func (w *Worker) templateEnv(ctx context.Context, claim *engine.Claim, resolver SecretResolver, uses any) (map[string]any, template.FuncMap, error) {
	d, run, task := claim.DAG, claim.Run, claim.Task
	params := map[string]any{}
	for k, v := range d.Params {
		params[k] = v
	}
	var conf map[string]any
	if run.Conf != "" {
		if err := json.Unmarshal([]byte(run.Conf), &conf); err != nil {
			return nil, nil, fmt.Errorf("the run's conf is not a JSON object: %v", err)
		}
	}
	for k, v := range conf {
		params[k] = v
	}
	r := render.Run{
		DagID: d.ID, RunID: run.RunID, RunType: string(run.RunType), TaskID: task.ID, Owner: d.Owner,
		TryNumber: claim.Ref.TryNumber, MaxTries: claim.MaxTries(), Loc: d.Location(), LogicalDate: run.LogicalDate,
		IntervalStart: run.IntervalStart, IntervalEnd: run.IntervalEnd, Params: params, Conf: conf,
	}
	if ui := w.env(alerts.EnvUIURL); ui != "" {
		r.LogURL = alerts.LogURL(ui, run.DagID, run.RunID, task.ID, claim.Ref.TryNumber)
	}
	if ti := claim.Instance(); ti.MapIndex != nil {
		var item any
		if err := json.Unmarshal([]byte(ti.MapItem), &item); err != nil {
			return nil, nil, fmt.Errorf("the item of %s is not JSON: %v", task.ID, err)
		}
		r.Index, r.Item = ti.MapIndex, render.Numbers(item)
	}
	if b, _ := json.Marshal(uses); strings.Contains(string(b), "prev_data_interval_start_success") {
		prev, err := w.Engine.PrevSuccessStart(ctx, d.ID, run.LogicalDate)
		if err != nil {
			return nil, nil, err
		}
		r.PrevSuccessStart = prev
	}
	base := task.ID
	if parent, _, ok := scheduler.ParseMapChild(task.ID); ok {
		base = parent
	}
	upstream := ancestors(d, base)
	funcs := render.Funcs(render.Lookups{
		Var: func(name string) (string, bool, error) {
			if v, ok, err := resolver.Variable(ctx, name); err != nil || ok {
				return v, ok, err
			}
			return w.Engine.Variable(ctx, name)
		},
		Secret: func(name string) (string, error) { return resolver.Secret(ctx, name) },
		Conn: func(id string) (map[string]any, error) {
			c, err := resolver.Conn(ctx, id)
			if err != nil {
				return nil, err
			}
			return map[string]any{"conn_id": c.ID, "conn_type": c.Type, "host": c.Host, "login": c.Login,
				"password": c.Password, "schema": c.Schema, "port": c.Port, "extra": c.Extra}, nil
		},
		XCom: func(up string) (any, error) {
			if !upstream[up] {
				return nil, fmt.Errorf("xcom %q: %s is not upstream of %s (add it to needs)", up, up, task.ID)
			}
			raw, err := w.Engine.XCom(ctx, run.DagID, run.RunID, up)
			if err != nil {
				return nil, err
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("xcom %q: %v", up, err)
			}
			return render.Numbers(v), nil
		},
		Duration: func(up string) (time.Duration, bool, error) {
			if !upstream[up] {
				return 0, false, fmt.Errorf("duration %q: %s is not upstream of %s (add it to needs)", up, up, task.ID)
			}
			return w.Engine.TaskDuration(ctx, run.DagID, run.RunID, up)
		},
	}, d.Location())
	addBundleFuncs(ctx, funcs)
	return render.Data(r), funcs, nil
}

// ancestors returns every task a task needs, directly or not.
func ancestors(d *dag.DAG, id string) map[string]bool {
	out := map[string]bool{}
	var walk func(string)
	walk = func(x string) {
		t, ok := d.Task(x)
		if !ok {
			return
		}
		for _, up := range t.Needs {
			if !out[up] {
				out[up] = true
				walk(up)
			}
		}
	}
	walk(id)
	return out
}

// final is a failure another try cannot fix.
func Final(msg string) engine.Result {
	return engine.Result{State: scheduler.AttemptFailed, Error: msg, Final: true}
}

// noSecrets is the resolver of a worker without Secret Manager.
type noSecrets struct{}

func (noSecrets) Secret(_ context.Context, name string) (string, error) {
	return "", fmt.Errorf("secret %q: this worker has no Secret Manager configured", name)
}

func (noSecrets) Conn(_ context.Context, id string) (Connection, error) {
	return Connection{}, fmt.Errorf("connection %q: this worker has no Secret Manager configured", id)
}

func (noSecrets) Variable(context.Context, string) (string, bool, error) { return "", false, nil }
func (noSecrets) Values() []string                                       { return nil }
