package proctree

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const supported = true

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

// Init must be the first call in main (and in TestMain) of a binary that starts process
// trees. In a process started by Start as the supervisor it supervises the command and exits
// the process; otherwise it notes that this binary can serve as a supervisor and returns.
//
// Init also looks for a dedicated supervisor, `updraft-supervise` (cmd/updraft-supervise),
// next to the running executable: Start then runs that small binary instead of re-executing
// this one, which saves the big binary's start-up (tens of milliseconds of CPU) per tree.
func Init() {
	switch v := os.Getenv(envSupervise); v {
	case "":
		armed = true
		if p := findSupervisor(); p != "" {
			supervisorPath = p
		}
		return
	case supervisorVersion:
		os.Exit(supervise(os.Args))
	default:
		fmt.Fprintf(os.Stderr, "updraft-supervise: started with protocol %q, this build speaks %q: rebuild it with the binary next to it (go build -o bin/ ./cmd/...)\n", v, supervisorVersion)
		os.Exit(127)
	}
}

func supervisorAttr() *syscall.SysProcAttr {
	// Its own group: a kill of the starter's process group must leave it alive to clean up.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func directAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// supervise is the supervisor's main: args are [argv0, starter's ref, path, args...].
func supervise(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "updraft-supervise: no command to run")
		return 2
	}
	starter, _ := ParseRef(args[1])
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "updraft-supervise: cannot become a subreaper (%v): descendants that leave the process group may outlive the task\n", errno)
	}
	stop := make(chan struct{}, 3)
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(os.Stderr, "updraft-supervise: %v\n", err)
		return 126
	}
	pid, err := syscall.ForkExec(args[2], args[2:], &syscall.ProcAttr{
		Env:   withoutSupervise(os.Environ()),
		Files: []uintptr{devnull.Fd(), 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	devnull.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "updraft-supervise: start %s: %v\n", args[2], err)
		return 127
	}
	go func() { // the control pipe ends: the starter stopped us, or died
		_, _ = io.Copy(io.Discard, os.NewFile(3, "control"))
		stop <- struct{}{}
	}()
	go func() { <-sigs; stop <- struct{}{} }()
	if starter > 0 && os.Getppid() != starter { // it died before we could watch it
		stop <- struct{}{}
	}
	r := &reaper{cmd: pid}
	for !r.done {
		select {
		case <-chld:
			r.reap()
		case <-stop:
			killAll(pid, r)
		}
	}
	killAll(pid, r) // what the command left running ends with it
	return mirror(r.status)
}

// reaper collects every child of the supervisor: the command, and each orphan reparented
// to it.
type reaper struct {
	cmd    int
	done   bool
	status syscall.WaitStatus
	// childless is set when the last reap found no child at all (ECHILD). The supervisor is
	// a subreaper, so every descendant is its child or a child's descendant: with no child
	// left, none is left.
	childless bool
}

func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		r.childless = err == syscall.ECHILD
		if err != nil || pid <= 0 {
			return
		}
		if pid == r.cmd {
			r.done, r.status = true, ws
		}
	}
}

// killAll SIGKILLs the command's process group and every descendant of this process, until
// none is left and the command is reaped.
func killAll(cmd int, r *reaper) {
	self := os.Getpid()
	for round := 0; round < 2000; round++ {
		if round == 0 { // later, the group's id could in theory be reused
			signalGroup(cmd, syscall.SIGKILL)
			// The common case, a command that left nothing behind: once it is reaped the
			// supervisor has no child, hence no descendant, and the /proc walk (a read of
			// every process's stat) is not needed.
			if r.reap(); r.done && r.childless {
				return
			}
		}
		live, all := descendants(self)
		for _, p := range live {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		r.reap()
		if all == 0 && r.done {
			return
		}
		time.Sleep(2 * time.Millisecond) // let the kernel deliver the kills and reparent orphans
	}
	fmt.Fprintln(os.Stderr, "updraft-supervise: descendants keep appearing; giving up")
}

// mirror exits the way the command did: its exit code, or the signal that killed it.
func mirror(ws syscall.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	if ws.Signaled() {
		switch sig := ws.Signal(); sig {
		case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE,
			syscall.SIGALRM, syscall.SIGUSR1, syscall.SIGUSR2:
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig)
			time.Sleep(time.Second) // the signal ends the process; this is only a fallback
			return 128 + int(sig)
		default:
			return 128 + int(sig)
		}
	}
	return 1
}

// killTree (direct mode) SIGKILLs a command's process group and its descendants until none
// is left.
func killTree(pid int) {
	signalGroup(pid, syscall.SIGKILL)
	for range 2000 {
		live, _ := descendants(pid)
		if len(live) == 0 {
			return
		}
		for _, p := range live {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// proc is one line of the process table.
type proc struct {
	ppid   int
	zombie bool
}

// processes reads every process's parent and state from /proc.
func processes() map[int]proc {
	out := map[int]proc{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		f := statFields(b)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = proc{ppid: ppid, zombie: f[0] == "Z" || f[0] == "X"}
	}
	return out
}

// statFields returns /proc/PID/stat's fields after the command name (which may hold spaces
// and parentheses): state, ppid, pgrp, ….
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// descendants returns the live (not zombie) descendants of root, and how many there are
// counting zombies.
func descendants(root int) (live []int, all int) {
	children := map[int][]int{}
	table := processes()
	for pid, p := range table {
		children[p.ppid] = append(children[p.ppid], pid)
	}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			all++
			if !table[c].zombie {
				live = append(live, c)
			}
			queue = append(queue, c)
		}
	}
	return live, all
}

// Alive reports whether a process runs (a zombie does not count).
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := statFields(b)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// StartTime is field 22 of /proc/PID/stat (clock ticks after boot), or "" if unknown.
func StartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	if f := statFields(b); len(f) > 19 {
		return f[19]
	}
	return ""
}

// Supervisors returns the pids of the supervisors a process (named by its Ref) started that
// still run: after that process died, they are still killing what it ran.
func Supervisors(starterRef string) []int {
	var out []int
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if len(argv) > 1 && argv[0] == supervisorArg0 && argv[1] == starterRef && Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}
