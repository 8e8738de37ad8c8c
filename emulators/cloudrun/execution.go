package runemu

import (
	"github.com/updraft-dev/updraft/emulators/internal/proc"

	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// execution is one run of a job: one task, one process group. Its fields are guarded by s.mu.
type execution struct {
	s                                  *Server
	name, id, jobID, project, location string
	uid                                string
	argv                               []string
	env                                map[string]string
	timeout                            time.Duration
	logPath                            string

	created, started, completed time.Time
	pid                         int
	startErr                    error
	exitCode                    int
	timedOut, cancelled         bool
	exited                      bool // the main process has exited (it may not be reaped yet)
	finished                    bool // reaped and its outcome recorded
	timer, killTimer            *time.Timer
	done                        chan struct{} // closed when finished
}

// start starts the execution's process and its waiter; the caller holds s.mu. A process that
// cannot start makes a failed execution, as a container that cannot start does on Cloud Run.
func (e *execution) start() {
	s := e.s
	e.logPath = filepath.Join(s.LogDir, e.jobID, e.id+".log")
	logFile, err := openLog(e.logPath)
	if err != nil {
		e.fail(fmt.Errorf("open the log: %w", err))
		return
	}
	cmd := exec.Command(e.argv[0], e.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var flush func()
	cmd.Stdout, cmd.Stderr, flush = e.outputs(logFile) // and to the Logging stand-in: logs.go
	// Output pipes a process outside the group may hold open are closed a second after exit.
	cmd.WaitDelay = time.Second
	cmd.Env = os.Environ()
	for k, v := range e.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "CLOUD_RUN_JOB="+e.jobID, "CLOUD_RUN_EXECUTION="+e.id,
		"CLOUD_RUN_TASK_INDEX=0", "CLOUD_RUN_TASK_ATTEMPT=0", "CLOUD_RUN_TASK_COUNT=1")
	e.started = time.Now()
	if err := proc.Start(cmd); err != nil {
		fmt.Fprintf(logFile, "runemu: %v\n", err)
		logFile.Close()
		e.fail(err)
		return
	}
	e.pid = cmd.Process.Pid
	s.running.Add(1)
	e.timer = time.AfterFunc(e.timeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !e.exited && !e.cancelled {
			e.timedOut = true
			e.terminate()
		}
	})
	go e.wait(cmd, logFile, flush)
}

// openLog creates an execution's log file.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// fail records an execution whose process never started; the caller holds s.mu.
func (e *execution) fail(err error) {
	e.startErr = err
	e.exited, e.finished = true, true
	e.completed = time.Now()
	close(e.done)
}

// wait waits for the main process to exit, kills what is left of its group, reaps it and
// records the outcome.
func (e *execution) wait(cmd *exec.Cmd, logFile *os.File, flush func()) {
	s := e.s
	defer s.running.Done()
	waitExited(e.pid)
	s.mu.Lock()
	e.exited = true
	e.timer.Stop()
	if e.killTimer != nil {
		e.killTimer.Stop()
	}
	// The leader is exited but not reaped, so its process group id is still ours.
	_ = syscall.Kill(-e.pid, sigKill)
	s.mu.Unlock()
	err := cmd.Wait()
	flush()
	logFile.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	e.exited = true
	e.completed = time.Now()
	e.exitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.exitCode = 128 + int(ws.Signal())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && e.exitCode == 0 {
		e.exitCode = -1
	}
	e.finished = true
	close(e.done)
}

// signal sends sig to the execution's process group while its leader is not reaped; the caller
// holds s.mu.
func (e *execution) signal(sig syscall.Signal) {
	if e.pid > 0 && !e.exited {
		_ = syscall.Kill(-e.pid, sig)
	}
}

// terminate stops the execution as Cloud Run stops a container: SIGTERM, then SIGKILL after
// the grace period; the caller holds s.mu.
func (e *execution) terminate() {
	e.signal(sigTerm)
	e.killTimer = time.AfterFunc(e.s.grace, func() {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		e.signal(sigKill)
	})
}

// succeeded reports whether a finished execution's task succeeded; the caller holds s.mu.
func (e *execution) succeeded() bool {
	return e.finished && e.startErr == nil && !e.cancelled && !e.timedOut && e.exitCode == 0
}

// proto is the execution as the API shows it; the caller holds s.mu.
func (e *execution) proto() *runpb.Execution {
	var logURI string
	if e.logPath != "" {
		abs, err := filepath.Abs(e.logPath)
		if err != nil {
			abs = e.logPath
		}
		logURI = (&url.URL{Scheme: "file", Path: abs}).String()
	}
	x := &runpb.Execution{
		Name: e.name, Uid: e.uid, Job: e.jobID, Generation: 1, ObservedGeneration: 1,
		CreateTime: timestamppb.New(e.created), UpdateTime: timestamppb.New(e.created),
		TaskCount: 1, Parallelism: 1, LogUri: logURI,
		Template: taskTemplate(e.jobID, e.argv, e.env, e.timeout),
	}
	if !e.started.IsZero() {
		x.StartTime = timestamppb.New(e.started)
		x.UpdateTime = x.StartTime
	}
	task := e.id + "-task0"
	completed := &runpb.Condition{Type: "Completed", State: runpb.Condition_CONDITION_RECONCILING,
		LastTransitionTime: x.UpdateTime}
	started := &runpb.Condition{Type: "Started", State: runpb.Condition_CONDITION_SUCCEEDED,
		LastTransitionTime: x.StartTime}
	switch {
	case !e.finished:
		x.Reconciling = true
		x.RunningCount = 1
		completed.Message = "Execution is running."
	case e.startErr != nil:
		x.FailedCount = 1
		started.State = runpb.Condition_CONDITION_FAILED
		completed.State = runpb.Condition_CONDITION_FAILED
		completed.Message = fmt.Sprintf("Task %s failed with message: The container could not start: %v.", task, e.startErr)
	case e.cancelled:
		x.CancelledCount = 1
		completed.State = runpb.Condition_CONDITION_FAILED
		completed.Reasons = &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_CANCELLED}
		completed.Message = "The execution was cancelled."
	case e.timedOut:
		x.FailedCount = 1
		completed.State = runpb.Condition_CONDITION_FAILED
		completed.Message = fmt.Sprintf("Task %s failed with message: The configured timeout was reached.", task)
	case e.exitCode != 0:
		x.FailedCount = 1
		completed.State = runpb.Condition_CONDITION_FAILED
		completed.Reasons = &runpb.Condition_ExecutionReason_{ExecutionReason: runpb.Condition_NON_ZERO_EXIT_CODE}
		completed.Message = fmt.Sprintf("Task %s failed with message: The container exited with exit code %d.", task, e.exitCode)
	default:
		x.SucceededCount = 1
		completed.State = runpb.Condition_CONDITION_SUCCEEDED
		completed.Message = fmt.Sprintf("Execution completed successfully in %s.", e.completed.Sub(e.started).Round(time.Millisecond))
	}
	if e.finished {
		x.CompletionTime = timestamppb.New(e.completed)
		x.UpdateTime = x.CompletionTime
		completed.LastTransitionTime = x.CompletionTime
	}
	if e.started.IsZero() {
		started = nil
	}
	x.Conditions = []*runpb.Condition{{Type: "ResourcesAvailable", State: runpb.Condition_CONDITION_SUCCEEDED,
		LastTransitionTime: timestamppb.New(e.created)}}
	if started != nil {
		x.Conditions = append(x.Conditions, started)
	}
	x.Conditions = append(x.Conditions, completed)
	return x
}

// operationProto is an operation as the API shows it: the execution as metadata; once the
// execution has finished, the execution as the response, or for RunJob of a failed execution,
// an error; the caller holds s.mu.
func (s *Server) operationProto(op *operation) (*longrunningpb.Operation, error) {
	x := op.exec.proto()
	md, err := anypb.New(x)
	if err != nil {
		return nil, err
	}
	out := &longrunningpb.Operation{Name: op.name, Metadata: md, Done: op.exec.finished}
	if !out.Done {
		return out, nil
	}
	if !op.cancel && !op.exec.cancelled && !op.exec.succeeded() {
		msg := "Execution failed."
		for _, c := range x.GetConditions() {
			if c.GetType() == "Completed" {
				msg = c.GetMessage()
			}
		}
		out.Result = &longrunningpb.Operation_Error{Error: &status.Status{Code: int32(codes.Unknown), Message: msg}}
		return out, nil
	}
	out.Result = &longrunningpb.Operation_Response{Response: md}
	return out, nil
}
