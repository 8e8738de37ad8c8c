package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/updraft-dev/updraft/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// EnvAttempt is the variable that carries the attempt to a worker: base64 JSON of an
// AttemptRef, the same for a Cloud Run job execution and a local subprocess.
const EnvAttempt = "UPDRAFT_ATTEMPT"

// EncodeAttempt encodes an attempt reference for EnvAttempt.
func EncodeAttempt(ref scheduler.AttemptRef) string {
	b, _ := json.Marshal(ref)
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeAttempt decodes EnvAttempt's value.
func DecodeAttempt(s string) (scheduler.AttemptRef, error) {
	var ref scheduler.AttemptRef
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ref, fmt.Errorf("%s is not base64: %w", EnvAttempt, err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return ref, fmt.Errorf("%s is not JSON: %w", EnvAttempt, err)
	}
	return ref, ref.Validate()
}

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
}

// Execute runs one attempt end to end. It returns nil when the attempt's outcome was
// recorded (whatever it was) or when the delivery was a duplicate or stale and was dropped.
func (w *Worker) Execute(ctx context.Context, ref scheduler.AttemptRef) error {
	logRef := ""
	if w.LogDir != "" {
		logRef = "file:" + LogPath(w.LogDir, ref)
	}
	claim, err := w.Engine.Claim(ctx, ref, engine.Worker{Name: w.Name, ExecutorRef: w.ExecutorRef, LogRef: logRef})
	if errors.Is(err, engine.ErrDuplicate) || errors.Is(err, engine.ErrStale) {
		w.Log.Info("attempt dropped", "attempt_id", ref.AttemptID, "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", ref.AttemptID, err)
	}
	// The result is recorded even when the worker is being stopped (SIGTERM cancels ctx).
	finishCtx, cancelFinish := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancelFinish()
	finish := func(res engine.Result) error {
		err := claim.Finish(finishCtx, res)
		if errors.Is(err, engine.ErrStale) {
			w.Log.Warn("result recorded on the attempt only", "attempt_id", ref.AttemptID, "reason", err)
			return nil
		}
		return err
	}
	logger, err := NewLogger(w.Stdout, w.LogDir, ref)
	if err != nil {
		return finish(failed(nil, "worker: open log: "+err.Error()))
	}
	defer logger.Close()

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
				if err := claim.Renew(leaseCtx); err != nil && leaseCtx.Err() == nil {
					w.Log.Warn("lease renewal failed", "attempt_id", ref.AttemptID, "error", err)
				}
			}
		}
	}()

	res := w.run(ctx, claim, logger)
	stopLease()
	<-leaseDone
	if res.State == scheduler.AttemptFailed {
		logger.Error(res.Error)
	}
	return finish(res)
}

func (w *Worker) run(ctx context.Context, claim *engine.Claim, logger *Logger) (res engine.Result) {
	typ, err := w.Registry.Lookup(claim.Task.Type)
	if err != nil {
		return failed(nil, err.Error())
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
			res = failed(nil, fmt.Sprintf("task type %s panicked: %v", claim.Task.Type, p))
		}
	}()
	logger.Info(fmt.Sprintf("running %s.%s try %d of %d (attempt %s)", claim.Ref.DagID, claim.Ref.TaskID,
		claim.Ref.TryNumber, claim.Task.Retries+1, claim.Ref.AttemptID))
	return typ.Run(runCtx, &Context{Ref: claim.Ref, Task: claim.Task, DAG: claim.DAG, Run: claim.Run, Log: logger})
}
