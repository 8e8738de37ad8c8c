//go:build soak

package soak

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// soakScript is what the tasks call to leave evidence: one line per event per execution,
// and the pids (with their kernel start time, so a reused pid is not mistaken) of what an
// execution started.
const soakScript = `#!/bin/sh
# soak.sh: what the soak suite's tasks call.
#   soak.sh rec FILE EVENT SHELL_PID [WORDS...]
#       append "EVENT UNIX_NS DAG RUN TASK TRY LOGICAL_DATE SHELL_PID WORKER_PID WORDS..."
#       (WORKER_PID is the task shell's parent: the worker that started it)
#   soak.sh pids FILE PID...    append "PID:STARTTIME" for each PID
#   soak.sh alive FILE          print how many PID:STARTTIME of FILE are live processes
starttime() { awk '{sub(/.*\) /, ""); print $20}' /proc/$1/stat 2>/dev/null; }
state() { awk '{sub(/.*\) /, ""); print $1}' /proc/$1/stat 2>/dev/null; }
cmd=$1; shift
case $cmd in
rec)
	f=$1; ev=$2; sh=$3; shift 3
	w=$(awk '{sub(/.*\) /, ""); print $2}' /proc/$sh/stat 2>/dev/null)
	printf '%s %s %s %s %s %s %s %s %s %s\n' "$ev" "$(date +%s%N)" "$UPDRAFT_DAG_ID" "$UPDRAFT_RUN_ID" \
		"$UPDRAFT_TASK_ID" "$UPDRAFT_TRY_NUMBER" "$UPDRAFT_LOGICAL_DATE" "$sh" "${w:-0}" "$*" >> "$f" ;;
pids)
	f=$1; shift
	for p in "$@"; do echo "$p:$(starttime $p)" >> "$f"; done ;;
alive)
	n=0
	for tok in $(cat "$1" 2>/dev/null); do
		p=${tok%%:*}; st=${tok#*:}
		s=$(state $p)
		if [ -n "$s" ] && [ "$s" != Z ] && [ "$(starttime $p)" = "$st" ]; then n=$((n+1)); fi
	done
	echo $n ;;
*) echo "soak.sh: unknown command $cmd" >&2; exit 2 ;;
esac
`

// execLine is one line a task wrote with `soak.sh rec`.
type execLine struct {
	Event       string
	At          time.Time
	DAG, Run    string
	Task        string
	Try         int
	LogicalDate string
	ShellPID    int
	WorkerPID   int
	Words       []string
}

// readLines parses a file of `soak.sh rec` lines (a missing file has none).
func readLines(t *testing.T, path string) []execLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []execLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 {
			t.Fatalf("%s: malformed line %q", path, sc.Text())
		}
		ns, err1 := strconv.ParseInt(fs[1], 10, 64)
		try, err2 := strconv.Atoi(fs[5])
		sh, err3 := strconv.Atoi(fs[7])
		w, err4 := strconv.Atoi(fs[8])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			t.Fatalf("%s: malformed line %q", path, sc.Text())
		}
		out = append(out, execLine{Event: fs[0], At: time.Unix(0, ns), DAG: fs[2], Run: fs[3], Task: fs[4], Try: try,
			LogicalDate: fs[6], ShellPID: sh, WorkerPID: w, Words: fs[9:]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// count returns how many lines have the event.
func count(lines []execLine, event string) int {
	n := 0
	for _, l := range lines {
		if l.Event == event {
			n++
		}
	}
	return n
}

// execution is one run of a task's command: its start line and, if it got there, its end.
type execution struct {
	Start execLine
	End   *execLine
}

// executions pairs start and end lines by shell pid.
func executions(lines []execLine) []execution {
	var out []execution
	idx := map[int]int{}
	for _, l := range lines {
		switch l.Event {
		case "start":
			idx[l.ShellPID] = len(out)
			out = append(out, execution{Start: l})
		case "end":
			if i, ok := idx[l.ShellPID]; ok {
				l := l
				out[i].End = &l
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.At.Before(out[j].Start.At) })
	return out
}

// proc is a process an execution started, as `soak.sh pids` recorded it.
type proc struct {
	PID       int
	StartTime string
}

// readPids parses a `soak.sh pids` file.
func readPids(t *testing.T, path string) []proc {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []proc
	for _, tok := range strings.Fields(string(b)) {
		p, st, _ := strings.Cut(tok, ":")
		pid, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("%s: malformed pid %q", path, tok)
		}
		out = append(out, proc{pid, st})
	}
	return out
}

// procStat returns a process's state letter, start time and parent, or ok false when it is
// gone.
func procStat(pid int) (state, start string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", "", 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], f[19], ppid, true
}

// alive reports whether the process still runs (a zombie counts as dead).
func (p proc) alive() bool {
	state, start, _, ok := procStat(p.PID)
	return ok && state != "Z" && (p.StartTime == "" || start == p.StartTime)
}

// String names the process with its command line, for messages.
func (p proc) String() string {
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	c := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	if c == "" || !p.alive() {
		c = "gone now"
	}
	if len(c) > 80 {
		c = c[:80] + "…"
	}
	return fmt.Sprintf("pid %d (%s)", p.PID, c)
}

// liveOf returns the processes of ps that are alive.
func liveOf(ps []proc) []proc {
	var out []proc
	for _, p := range ps {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// killLeftovers SIGKILLs, at the end of the test, whatever the pid files under dir name and
// is still alive: a leak the test reports is not left running on the machine.
func killLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(dir, "*.pids"))
		for _, f := range files {
			for _, p := range liveOf(readPids(t, f)) {
				_ = syscall.Kill(p.PID, syscall.SIGKILL)
			}
		}
	})
}

// overlaps returns the pairs of executions whose [start, end] intervals overlap; an
// execution without an end line ends at the time given by endOf (zero: still open).
func overlaps(ex []execution, endOf func(execution) time.Time) []string {
	var out []string
	for i := range ex {
		for j := i + 1; j < len(ex); j++ {
			ei := endOf(ex[i])
			if ei.IsZero() || ex[j].Start.At.Before(ei) {
				out = append(out, fmt.Sprintf("try %d (pid %d, %s → %s) overlaps try %d (pid %d, started %s)",
					ex[i].Start.Try, ex[i].Start.ShellPID, ex[i].Start.At.Format(time.RFC3339Nano), fmtEnd(ei),
					ex[j].Start.Try, ex[j].Start.ShellPID, ex[j].Start.At.Format(time.RFC3339Nano)))
			}
		}
	}
	return out
}

func fmtEnd(t time.Time) string {
	if t.IsZero() {
		return "never ended"
	}
	return t.Format(time.RFC3339Nano)
}
