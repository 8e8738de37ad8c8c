package proctree

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Supervisor markers: the environment variable that makes a re-executed binary the
// supervisor (Init), and the supervisor's argv[0], by which Supervisors finds it.
const (
	envSupervise   = "UPDRAFT_PROCTREE_SUPERVISE"
	supervisorArg0 = "updraft-supervise"
)

// StopGrace is how long Stop waits for the supervisor to report the tree gone before it
// SIGKILLs the supervisor itself.
const StopGrace = 5 * time.Second

// supervisorVersion is the value of envSupervise: the argument protocol between Start and
// supervise. A supervisor that gets another value refuses to run (a stale updraft-supervise
// next to a newer binary), so the mismatch is a clear error rather than a wrong command.
const supervisorVersion = "1"

// armed is set by Init: this binary can be re-executed as the supervisor.
var armed bool

// supervisorPath is the program Start runs as the supervisor: a dedicated updraft-supervise
// next to this binary when Init found one (it starts in about a millisecond, where the
// re-executed binary runs every package's initialisation first), else this binary itself.
var supervisorPath = "/proc/self/exe"

// findSupervisor returns the dedicated supervisor binary next to the running executable
// (`updraft-supervise`, built from cmd/updraft-supervise), or "" when there is none.
func findSupervisor() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	cand := filepath.Join(filepath.Dir(exe), supervisorArg0)
	if cand == exe {
		return ""
	}
	fi, err := os.Stat(cand)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return ""
	}
	return cand
}

// SupervisorPath returns the program Start runs as the supervisor ("" when it runs commands
// directly): the dedicated updraft-supervise next to this binary, or /proc/self/exe.
func SupervisorPath() string {
	if !Available() {
		return ""
	}
	return supervisorPath
}

// Available reports whether Start runs commands under a supervisor (Init was called in this
// process) rather than directly.
func Available() bool { return armed && supported }

// Cmd is a command to run as a process tree.
type Cmd struct {
	Path string   // the program, e.g. /bin/sh
	Args []string // its arguments, without argv[0]
	Env  []string // its whole environment (nil: this process's)
	Dir  string   // its working directory ("" : this process's)
	// Stdout and Stderr receive its output (nil: /dev/null). They are passed as they are: the
	// caller closes its copies of the write ends after Start and reads to EOF, which comes
	// once the whole tree is gone.
	Stdout, Stderr *os.File
}

// Tree is a running command with its descendants.
type Tree struct {
	cmd      *exec.Cmd
	ctl      *os.File // write end of the supervisor's control pipe; nil when direct
	done     chan struct{}
	state    *os.ProcessState
	err      error
	stopOnce sync.Once
}

// Start runs c under a supervisor (see the package doc), or directly when this binary cannot
// be a supervisor.
func Start(c Cmd) (*Tree, error) {
	if c.Env == nil {
		c.Env = os.Environ()
	}
	t := &Tree{done: make(chan struct{})}
	if !Available() {
		t.cmd = exec.Command(c.Path, c.Args...)
		t.cmd.Env, t.cmd.Dir = c.Env, c.Dir
		setOut(t.cmd, c)
		t.cmd.SysProcAttr = directAttr()
		if err := startLocked(t.cmd); err != nil {
			return nil, err
		}
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("proctree: control pipe: %w", err)
		}
		t.cmd = &exec.Cmd{
			Path: supervisorPath,
			Args: append([]string{supervisorArg0, SelfRef(), c.Path}, c.Args...),
			Env:  append(withoutSupervise(c.Env), envSupervise+"="+supervisorVersion),
			Dir:  c.Dir,
			// fd 3 in the supervisor.
			ExtraFiles:  []*os.File{r},
			SysProcAttr: supervisorAttr(),
		}
		setOut(t.cmd, c)
		err = startLocked(t.cmd)
		r.Close()
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("proctree: start the supervisor: %w", err)
		}
		t.ctl = w
	}
	go func() {
		err := t.cmd.Wait()
		t.state = t.cmd.ProcessState
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.err = err
		}
		if t.ctl == nil { // direct: what the command left behind goes now
			killTree(t.cmd.Process.Pid)
		} else {
			t.ctl.Close()
		}
		close(t.done)
	}()
	return t, nil
}

func setOut(cmd *exec.Cmd, c Cmd) {
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
}

// startLocked starts cmd on a locked OS thread, so that a Pdeathsig fires when this process
// dies, not when the thread that forked happens to exit (golang/go#27505).
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// Pid is the pid of the supervisor (or of the command, when direct).
func (t *Tree) Pid() int { return t.cmd.Process.Pid }

// Done is closed once the tree has ended and Wait returns at once.
func (t *Tree) Done() <-chan struct{} { return t.done }

// Stop kills the whole tree and returns once it is gone (or, should the supervisor not
// answer within StopGrace, once the supervisor itself is killed). It may be called more than
// once and after the tree ended.
func (t *Tree) Stop() {
	t.stopOnce.Do(func() {
		if t.ctl == nil {
			killTree(t.cmd.Process.Pid)
			return
		}
		t.ctl.Close() // the supervisor reads EOF: kill everything
		select {
		case <-t.done:
		case <-time.After(StopGrace):
			_ = t.cmd.Process.Kill()
		}
	})
	<-t.done
}

// Wait waits for the tree to end and returns the command's status: with a supervisor its
// exit code, or death by the signal that killed the command, is mirrored.
func (t *Tree) Wait() (*os.ProcessState, error) {
	<-t.done
	return t.state, t.err
}

func withoutSupervise(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, envSupervise+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// SelfRef names this process as `local:PID:STARTTIME` (see Ref).
func SelfRef() string { return Ref(os.Getpid()) }

// Ref names a local process as `local:PID:STARTTIME`, with the kernel's start time so that a
// reused pid is not mistaken for it.
func Ref(pid int) string { return fmt.Sprintf("local:%d:%s", pid, StartTime(pid)) }

// ParseRef returns the pid a `local:PID:STARTTIME` reference names and whether that very
// process still runs (a zombie does not).
func ParseRef(ref string) (pid int, alive bool) {
	parts := strings.Split(ref, ":")
	if len(parts) != 3 || parts[0] != "local" {
		return 0, false
	}
	if _, err := fmt.Sscanf(parts[1], "%d", &pid); err != nil || pid <= 0 {
		return 0, false
	}
	st := StartTime(pid)
	return pid, st != "" && st == parts[2] && Alive(pid)
}

// signalTree sends sig to a process group, ignoring a group that is gone.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig)
	}
}
