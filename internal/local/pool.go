package local

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// EnvWorkerServe makes `updraft worker` a warm worker of a Pool (tasks.EnvWorkerServe).
const EnvWorkerServe = tasks.EnvWorkerServe

// PooledRef is the executor reference of an attempt a warm worker runs: the worker's
// `local:PID:STARTTIME` and `#ATTEMPT_ID`. Processes reads both: the process tells whether
// the attempt can still run, the attempt id lets a Pool cancel that attempt alone.
func PooledRef(workerRef, attemptID string) string { return tasks.PooledRef(workerRef, attemptID) }

// splitRef splits a PooledRef; a plain reference has no attempt.
func splitRef(ref string) (worker, attemptID string) {
	worker, attemptID, _ = strings.Cut(ref, "#")
	return worker, attemptID
}

// Pool keeps warm worker processes (`updraft worker` with UPDRAFT_WORKER_SERVE=1) that each
// run many attempts with the same clients, instead of a process per attempt. Each attempt's
// shell still runs under its own proctree supervisor, tagged with its warm worker: kill -9 of
// a warm worker takes all its attempts' trees, and the tick finds each attempt lost (its lease
// expires, Processes.Alive says gone once the trees are) and retries it. A warm worker that
// dies is replaced on the next attempt. A rebuilt worker binary (Cmd[0] changed on disk)
// takes effect at the next attempt: the workers of the old binary take no new attempt and
// exit once theirs end. It is safe for concurrent use.
type Pool struct {
	// Cmd starts a worker: the worker binary and its arguments.
	Cmd []string
	// Env is the workers' environment besides EnvWorkerServe (as Dispatcher.Env).
	Env []string
	// Size is the number of warm workers; attempts go to the least busy.
	Size int
	// Stderr receives the workers' own errors (nil: discarded).
	Stderr io.Writer
	Log    *slog.Logger
	// Kick (nil: nothing) is called when a worker says it published a task message (its
	// fast-follow queued a downstream task): the dispatcher then pulls at once.
	Kick func()

	// Started counts the warm worker processes started; Kicks the task messages they said
	// they published.
	Started, Kicks atomic.Int64

	mu      sync.Mutex
	workers []*warm
	wg      sync.WaitGroup
}

// warm is one warm worker process.
type warm struct {
	cmd      *exec.Cmd
	ref      string
	in       io.WriteCloser
	inflight map[string]func() // attempt id → its slot's release
	dead     bool
	bin      binStamp // the binary it was started from
	retired  bool     // the binary changed: no new attempts; its input closes once idle
}

// binStamp identifies a version of the worker binary: a rebuild (`go build -o` writes a
// new file) changes its inode, size or modification time.
type binStamp struct {
	ino, size int64
	mtime     time.Time
}

// stamp stats the worker binary as it is now (the zero stamp when it can't be found: then
// no worker is retired for it, and starting one reports the error).
func (p *Pool) stamp() binStamp {
	path, err := exec.LookPath(p.Cmd[0])
	if err != nil {
		return binStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return binStamp{}
	}
	st := binStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = int64(sys.Ino)
	}
	return st
}

// retire stops handing attempts to w; its input closes (and it exits) once its attempts
// have ended, so Cancel reaches them until then. The caller holds p.mu.
func (w *warm) retire() {
	w.retired = true
	if len(w.inflight) == 0 {
		_ = w.in.Close()
	}
}

// Submit sends an attempt to a warm worker, starting one if fewer than Size run. release is
// called once the attempt ends, or its worker dies.
func (p *Pool) Submit(msg scheduler.TaskMessage, release func()) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, err := p.pick()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w.in, "run %s\n", tasks.EncodeAttempt(msg.AttemptRef)); err != nil {
		return fmt.Errorf("local: send attempt %s to worker %s: %w", msg.AttemptID, w.ref, err)
	}
	w.inflight[msg.AttemptID] = release
	return nil
}

// pick returns the least busy live worker, starting one while fewer than Size run; the
// caller holds p.mu.
func (p *Pool) pick() (*warm, error) {
	now := p.stamp()
	live := p.workers[:0]
	var usable []*warm
	for _, w := range p.workers {
		if w.dead {
			continue
		}
		live = append(live, w) // a retired worker stays until it dies, for Cancel and Running
		if !w.retired && now != (binStamp{}) && w.bin != now {
			w.retire()
		}
		if !w.retired {
			usable = append(usable, w)
		}
	}
	p.workers = live
	if len(usable) < max(p.Size, 1) {
		w, err := p.start(now)
		if err != nil {
			return nil, err
		}
		p.workers = append(p.workers, w)
		return w, nil
	}
	best := usable[0]
	for _, w := range usable[1:] {
		if len(w.inflight) < len(best.inflight) {
			best = w
		}
	}
	return best, nil
}

// start starts a warm worker from the binary stamped bin; the caller holds p.mu.
func (p *Pool) start(bin binStamp) (*warm, error) {
	cmd := exec.Command(p.Cmd[0], p.Cmd[1:]...)
	cmd.Env = append(append(os.Environ(), p.Env...), EnvWorkerServe+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = p.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	doneR, doneW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{doneW} // fd 3
	if err := cmd.Start(); err != nil {
		doneR.Close()
		doneW.Close()
		return nil, fmt.Errorf("local: start a warm worker: %w", err)
	}
	doneW.Close()
	p.Started.Add(1)
	w := &warm{cmd: cmd, ref: ProcessRef(cmd.Process.Pid), in: in, inflight: map[string]func(){}, bin: bin}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sc := bufio.NewScanner(doneR)
		for sc.Scan() {
			if sc.Text() == "kick" {
				p.Kicks.Add(1)
				if p.Kick != nil {
					p.Kick()
				}
				continue
			}
			if id, ok := strings.CutPrefix(sc.Text(), "done "); ok {
				p.mu.Lock()
				release := w.inflight[id]
				delete(w.inflight, id)
				if w.retired && len(w.inflight) == 0 {
					_ = w.in.Close()
				}
				p.mu.Unlock()
				if release != nil {
					release()
				}
			}
		}
		doneR.Close()
		err := cmd.Wait()
		p.mu.Lock()
		w.dead = true
		left := w.inflight
		w.inflight = map[string]func(){}
		p.mu.Unlock()
		// Its attempts still running are the tick's now: their leases expire, and
		// Processes.Alive says gone once their trees are.
		for id, release := range left {
			p.Log.Warn("warm worker died with an attempt running", "attempt_id", id, "worker", w.ref, "error", err)
			release()
		}
	}()
	return w, nil
}

// Cancel stops one attempt of a live warm worker (the worker stops its tree and records the
// outcome); it reports whether this pool has that worker.
func (p *Pool) Cancel(workerRef, attemptID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		if w.ref == workerRef && !w.dead {
			_, _ = fmt.Fprintf(w.in, "cancel %s\n", attemptID)
			return true
		}
	}
	return false
}

// Running reports whether a live warm worker of this pool still runs an attempt: known is
// false when the pool has no live worker of that reference (another process's pool, or a
// worker gone), running whether the attempt was handed to it and has not reported done.
func (p *Pool) Running(workerRef, attemptID string) (known, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range p.workers {
		if w.ref == workerRef && !w.dead {
			_, running = w.inflight[attemptID]
			return true, running
		}
	}
	return false, false
}

// Busy returns the pids of the warm workers running an attempt now.
func (p *Pool) Busy() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, w := range p.workers {
		if !w.dead && len(w.inflight) > 0 {
			out = append(out, w.cmd.Process.Pid)
		}
	}
	return out
}

// Stop ends the warm workers: their input is closed and they get SIGTERM, so each stops
// its attempts' trees, records the outcomes and exits; after grace, SIGKILL. It waits for
// them.
func (p *Pool) Stop(grace time.Duration) {
	p.mu.Lock()
	var pids []int
	for _, w := range p.workers {
		_ = w.in.Close()
		if !w.dead {
			pids = append(pids, w.cmd.Process.Pid)
		}
	}
	p.mu.Unlock()
	for _, pid := range pids {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		for _, pid := range pids {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		<-done
	}
}
