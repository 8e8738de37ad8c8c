package taskrun

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// shellCtx is a shell task's context whose log is a file (bounded by max; 0: the default).
func shellCtx(t *testing.T, command string, max int64) (*Context, string) {
	t.Helper()
	dir := t.TempDir()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "t", TryNumber: 1, AttemptID: "a1"}
	log, err := tasks.NewLogger(nil, dir, ref)
	if err != nil {
		t.Fatal(err)
	}
	if max == 0 {
		max = tasks.DefaultLogMaxBytes
	}
	log.SetMaxBytes(max)
	return &Context{Ref: ref, Task: &dag.Task{ID: "t", Type: "shell"}, DAG: &dag.DAG{ID: "d"},
		Args: map[string]any{"command": command}, Log: log}, tasks.LogPath(dir, ref)
}

// logEntries closes the context's log and reads it back.
func logEntries(t *testing.T, tc *Context, path string) ([]tasks.Entry, int64) {
	t.Helper()
	if err := tc.Log.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var out []tasks.Entry
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			var e tasks.Entry
			if jerr := json.Unmarshal(b, &e); jerr != nil {
				t.Fatalf("log line is not JSON: %v", jerr)
			}
			out = append(out, e)
		}
		if err != nil {
			return out, st.Size()
		}
	}
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

func TestShellRunsUnderTheSupervisor(t *testing.T) {
	if !proctree.Available() {
		t.Fatal("TestMain calls proctree.Init: shell tasks should run under the supervisor")
	}
}

// A timeout kills the whole tree, a setsid grandchild holding stdout included, and the
// attempt does not wait for the grandchild's pipe.
func TestShellTimeoutKillsSetsidDescendants(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	tc, _ := shellCtx(t, fmt.Sprintf("setsid sleep 600 & echo $! > %s; echo started; sleep 600", pidFile), 0)
	ctx, cancel := context.WithTimeoutCause(context.Background(), 2*time.Second, fmt.Errorf("timed out after 2s (the task's timeout)"))
	defer cancel()
	res := runShell(ctx, tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "timed out after 2s") {
		t.Fatalf("result %s %q; want failed on the timeout", res.State, res.Error)
	}
	if pid := readPID(t, pidFile); proctree.Alive(pid) {
		t.Fatalf("the setsid grandchild %d outlived its task's timeout", pid)
	}
}

// Background children still running when the command exits end with it; the attempt does
// not wait for them nor for the pipe they hold.
func TestShellLeftoversEndWithTheCommand(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tc, _ := shellCtx(t, fmt.Sprintf("setsid sleep 60 & echo $! > %s; echo '{\"n\": 1}'", pidFile), 0)
	res := runShell(context.Background(), tc)
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `{"n": 1}` {
		t.Fatalf("result %s %q %s; want success with its last line", res.State, res.Error, res.XCom)
	}
	if pid := readPID(t, pidFile); proctree.Alive(pid) {
		t.Fatalf("the background child %d outlived its task", pid)
	}
}

func TestShellLongLineThenLast(t *testing.T) {
	t.Parallel()
	tc, path := shellCtx(t, "head -c 2097152 /dev/zero | tr '\\0' a; echo; echo after the long line; echo last", 0)
	res := runShell(context.Background(), tc)
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `"last"` {
		t.Fatalf("result %s %q XCom %s; want success with XCom \"last\"", res.State, res.Error, res.XCom)
	}
	entries, _ := logEntries(t, tc, path)
	var long, after bool
	for _, e := range entries {
		long = long || len(e.Message) == 2<<20 && strings.Trim(e.Message, "a") == ""
		after = after || long && e.Message == "after the long line"
	}
	if !long || !after {
		t.Fatalf("log: the 2 MiB line whole %v, the line after it %v; want both", long, after)
	}
}

// 50 MB of output: the log keeps its head and its tail within the bound, says how much it
// cut, and the XCom still comes from the true last line.
func TestShellLogIsBoundedAndXComIsTheLastLine(t *testing.T) {
	t.Parallel()
	const max = 16 << 20
	tc, path := shellCtx(t, `echo first; yes "$(printf '%0999d' 7)" | head -c 50000000; echo; echo '{"rows": 50000}'`, max)
	res := runShell(context.Background(), tc)
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `{"rows": 50000}` {
		t.Fatalf("result %s %q XCom %s", res.State, res.Error, res.XCom)
	}
	entries, size := logEntries(t, tc, path)
	marker := ""
	for _, e := range entries {
		if strings.HasPrefix(e.Message, "[… ") {
			marker = e.Message
		}
	}
	if marker == "" || !strings.Contains(marker, "bytes cut …]") {
		t.Fatal("the log has no cut marker")
	}
	markerLen := int64(len(marker) + 300) // its JSON envelope
	if size > max+markerLen {
		t.Fatalf("log of %d bytes; want at most the bound %d plus the marker", size, max)
	}
	if entries[0].Message != "first" || entries[len(entries)-1].Message != `{"rows": 50000}` {
		t.Fatalf("log starts %q and ends %q; want its head and its tail", entries[0].Message, entries[len(entries)-1].Message)
	}
	var cut int64
	fmt.Sscanf(marker, "[… %d bytes cut", &cut)
	if cut < 50000000-max {
		t.Fatalf("marker says %d bytes cut of 50 MB with a %d bound", cut, max)
	}
}

// One line longer than the whole log: its ends are kept, the lines after it too.
func TestShellHugeLineInASmallLog(t *testing.T) {
	t.Parallel()
	const max = 64 << 10
	tc, path := shellCtx(t, "head -c 20000000 /dev/zero | tr '\\0' b; echo; echo last", max)
	res := runShell(context.Background(), tc)
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `"last"` {
		t.Fatalf("result %s %q XCom %.100s", res.State, res.Error, res.XCom)
	}
	entries, size := logEntries(t, tc, path)
	if size > max+1000 {
		t.Fatalf("log of %d bytes; bound %d", size, max)
	}
	if got := entries[len(entries)-1].Message; got != "last" {
		t.Fatalf("log ends with %.100q; want last", got)
	}
}

// A last line over the XCom limit fails with the limit's message and its true size, even
// when the line is longer than what the log keeps of it.
func TestShellOverLongLastLineHitsTheXComLimit(t *testing.T) {
	t.Parallel()
	tc, _ := shellCtx(t, "head -c 307200 /dev/zero | tr '\\0' c; echo", 64<<10)
	res := runShell(context.Background(), tc)
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "XCom of 300 KiB is over the 256 KiB limit") {
		t.Fatalf("result %s final=%v %q", res.State, res.Final, res.Error)
	}
}

func TestReadLinesAnyLength(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("x", 100) + "\n\nshort\r\n" + strings.Repeat("y", 1000) + "\nno newline"
	var got []line
	readLines(strings.NewReader(in), 128, func(l line) { got = append(got, l) })
	if len(got) != 5 || got[0].text != strings.Repeat("x", 100) || got[1].text != "" || got[2].text != "short" ||
		got[4].text != "no newline" {
		t.Fatalf("lines %v", got)
	}
	if l := got[3]; !l.cut || l.size != 1000 || !strings.HasPrefix(l.text, strings.Repeat("y", 128)+" [… 744 bytes cut …] ") {
		t.Fatalf("long line: cut=%v size=%d %.200q", l.cut, l.size, l.text)
	}
}

func TestParseLogMaxBytes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"": tasks.DefaultLogMaxBytes, "1048576": 1 << 20, "16MiB": 16 << 20, "64 KiB": 64 << 10, "1GiB": 1 << 30} {
		if got, err := ParseLogMaxBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "-1", "0", "100", "16MB", "1e9"} {
		if _, err := ParseLogMaxBytes(in); err == nil || !strings.Contains(err.Error(), "UPDRAFT_LOG_MAX_BYTES") {
			t.Errorf("%q: error %v; want one naming the variable", in, err)
		}
	}
}
