package local

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/updraft-dev/updraft/engine"
)

// ProcessRef names a local process as an executor reference: `local:PID:STARTTIME`, with the
// kernel's start time so a reused pid is not mistaken for the worker.
func ProcessRef(pid int) string {
	return fmt.Sprintf("local:%d:%s", pid, startTime(pid))
}

// startTime is field 22 of /proc/PID/stat (clock ticks after boot), or "" if unknown.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 { // the command name may hold spaces
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// Processes is the local executor: a worker is alive while its process is.
type Processes struct{}

var _ engine.Executor = Processes{}

// Alive reports whether the process a `local:PID:STARTTIME` reference names still runs. A
// reference of another kind is unknown here, which counts as gone.
func (Processes) Alive(_ context.Context, ref string) (bool, error) {
	_, ok := livePID(ref)
	return ok, nil
}

// Cancel sends SIGTERM to the worker process a reference names, if it still runs; the worker
// then stops its task's process group and records the outcome.
func (Processes) Cancel(_ context.Context, ref string) error {
	pid, ok := livePID(ref)
	if !ok || pid == os.Getpid() { // an inline run in this very process is not killed
		return nil
	}
	return syscall.Kill(pid, syscall.SIGTERM)
}

// livePID returns the pid of a `local:PID:STARTTIME` reference while that process runs.
func livePID(ref string) (int, bool) {
	parts := strings.Split(ref, ":")
	if len(parts) != 3 || parts[0] != "local" {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, false
	}
	st := startTime(pid)
	return pid, st != "" && st == parts[2]
}
