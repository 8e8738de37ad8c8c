package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// Dispatcher consumes the tasks topic: inline types run in this process, the others on a
// warm worker of Pool when there is one (a task with `executor: job` excepted: it keeps a
// process of its own), else in a worker subprocess per attempt.
type Dispatcher struct {
	Queue    *psqueue.Queue
	Worker   *taskrun.Worker // runs inline types
	Registry *taskrun.Registry
	// WorkerCmd starts a worker: the worker binary and its arguments.
	WorkerCmd []string
	// Env is the environment of worker subprocesses besides UPDRAFT_ATTEMPT: the project,
	// the emulator hosts and the log directory, as a Cloud Run job execution would get them.
	Env []string
	// MaxWorkers bounds concurrent worker subprocesses (default 64).
	MaxWorkers int
	// WorkerStderr receives the workers' stderr: their own errors, not task output (nil:
	// discarded). Their stdout (the attempt's structured log) is discarded locally: the
	// attempt's log file has the same lines.
	WorkerStderr io.Writer
	Log          *slog.Logger
	// Pool runs container attempts on warm workers (nil: a subprocess per attempt).
	Pool *Pool

	Spawned, Inline, Pooled, BadMessages atomic.Int64
	// Kicked counts the task messages taken by a pull that a Kick started.
	Kicked atomic.Int64

	// kick (nil: no kicks; Open makes it) wakes the kick loop of Run.
	kick chan struct{}

	mu       sync.Mutex
	children map[int]*exec.Cmd
	wg       sync.WaitGroup
	slots    chan struct{}
}

// Run receives task messages until ctx ends, then stops the workers it started (SIGTERM to
// each worker's process group, SIGKILL after a grace period) and waits for them.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.MaxWorkers <= 0 {
		d.MaxWorkers = 64
	}
	d.slots = make(chan struct{}, d.MaxWorkers)
	d.children = map[int]*exec.Cmd{}
	kicks := make(chan struct{})
	go func() { defer close(kicks); d.pullOnKicks(ctx) }()
	err := d.Queue.Receive(ctx, psqueue.SubDispatch, d.MaxWorkers*2, d.Handle)
	<-kicks
	d.stopChildren(10 * time.Second)
	return err
}

// Kick says a task message was just published: the dispatcher pulls the tasks subscription
// at once. The Pub/Sub emulator's streaming pull looks for new messages every 50 ms, which
// would otherwise add 25 ms on average to every task-to-task step. Kicks that come while a
// pull is pending are folded into it; a message the streaming pull took first is not pulled
// again. It never blocks, and does nothing for a Dispatcher not made by Open.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// pullOnKicks pulls what is waiting each time Kick is called, until ctx ends.
func (d *Dispatcher) pullOnKicks(ctx context.Context) {
	if d.kick == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		n, err := d.Queue.PullOnce(ctx, psqueue.SubDispatch, d.MaxWorkers, d.Handle)
		d.Kicked.Add(int64(n))
		if err != nil && ctx.Err() == nil {
			d.Log.Debug("pull on kick failed; the streaming pull delivers", "error", err)
		}
	}
}

// Handle dispatches one task message. Malformed messages are acknowledged, logged and counted.
func (d *Dispatcher) Handle(ctx context.Context, data []byte) error {
	msg, err := scheduler.DecodeTaskMessage(data)
	if err != nil {
		d.BadMessages.Add(1)
		d.Log.Error("dropping malformed task message", "error", err, "data", truncate(data, 200))
		return fmt.Errorf("%w: %v", psqueue.ErrBadMessage, err)
	}
	if msg.CancelJob != "" { // a deferred task's job to cancel (clear, mark, dagrun_timeout)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := tasktypes.CancelRequested(context.WithoutCancel(ctx), msg, d.Worker.Getenv); err != nil {
				d.Log.Warn("could not cancel a deferred job", "attempt_id", msg.AttemptID, "error", err)
			}
		}()
		return nil
	}
	if d.Registry.Inline(msg) {
		d.Inline.Add(1)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			// The attempt is known to the executor as this process's and the attempt's, like a
			// warm worker's: a Cancel from another process (`updraft tasks clear`) then leaves
			// it to the lease renewal rather than signalling this whole process.
			ref := PooledRef(d.Worker.ExecutorRef, msg.AttemptID)
			if err := d.Worker.ExecuteAs(context.WithoutCancel(ctx), msg.AttemptRef, ref); err != nil {
				d.Log.Error("inline attempt failed to record", "attempt_id", msg.AttemptID, "error", err)
			}
		}()
		return nil
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if d.Pool != nil && msg.Executor != "job" {
		if err := d.Pool.Submit(msg, func() { <-d.slots }); err != nil {
			<-d.slots
			d.Log.Error("could not hand the attempt to a warm worker", "attempt_id", msg.AttemptID, "error", err)
			// The error is a dead letter's reason, should it come to that.
			d.Worker.Engine.NoteDispatchError(ctx, msg.AttemptRef, err)
			return err // redelivered
		}
		d.Pooled.Add(1)
		return nil
	}
	if err := d.spawn(msg); err != nil {
		<-d.slots
		d.Log.Error("could not start worker", "attempt_id", msg.AttemptID, "error", err)
		// The error is a dead letter's reason, should it come to that.
		d.Worker.Engine.NoteDispatchError(ctx, msg.AttemptRef, err)
		return err // redelivered
	}
	return nil
}

func (d *Dispatcher) spawn(msg scheduler.TaskMessage) error {
	cmd := exec.Command(d.WorkerCmd[0], d.WorkerCmd[1:]...)
	cmd.Env = append(append(os.Environ(), d.Env...), tasks.EnvAttempt+"="+tasks.EncodeAttempt(msg.AttemptRef))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = d.WorkerStderr
	if err := cmd.Start(); err != nil {
		return err
	}
	d.Spawned.Add(1)
	d.mu.Lock()
	d.children[cmd.Process.Pid] = cmd
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := cmd.Wait()
		d.mu.Lock()
		delete(d.children, cmd.Process.Pid)
		d.mu.Unlock()
		<-d.slots
		if err != nil {
			d.Log.Warn("worker exited with an error", "attempt_id", msg.AttemptID, "pid", cmd.Process.Pid, "error", err)
		}
	}()
	return nil
}

func (d *Dispatcher) stopChildren(grace time.Duration) {
	if d.Pool != nil {
		defer d.Pool.Stop(grace)
	}
	d.signalChildren(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		d.signalChildren(syscall.SIGKILL)
		<-done
	}
}

func (d *Dispatcher) signalChildren(sig syscall.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for pid := range d.children {
		_ = syscall.Kill(-pid, sig)
	}
}

// Running returns the pids of the one-attempt worker subprocesses alive now (Pool.Busy has
// the warm workers running attempts).
func (d *Dispatcher) Running() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]int, 0, len(d.children))
	for pid := range d.children {
		out = append(out, pid)
	}
	return out
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}
