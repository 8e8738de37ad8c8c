package taskrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/scheduler"
)

// ExitSkip is the exit code that makes a shell task end skipped (Airflow's 99).
const ExitSkip = 99

// runShell runs `with.command` with /bin/sh under a process-tree supervisor (package
// internal/proctree), with `with.env` added to the worker's environment and `with.cwd` as
// working directory. Exit 0 → success, 99 → skipped, else failed. The last non-empty stdout
// line, however long the lines before it, is the XCom value: JSON if it parses, else a
// string.
//
// The command's whole process tree ends with the attempt: when the command exits (background
// children it left are killed), at the task's timeout or when the attempt is stopped, and
// when the worker process dies, even by SIGKILL. Descendants that called setsid or started
// their own process group are included. The attempt never waits on output pipes held by
// such descendants: it ends once the tree is gone, at most proctree.StopGrace after a stop.
func runShell(ctx context.Context, tc *Context) engine.Result {
	command, _ := tc.Args["command"].(string)
	if strings.TrimSpace(command) == "" {
		return Failed(nil, "shell: with.command is empty")
	}
	cwd, _ := tc.Args["cwd"].(string)
	dir, err := workDir(tc, cwd)
	if err != nil {
		return Failed(nil, "shell: "+err.Error())
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return Failed(nil, "shell: "+err.Error())
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return Failed(nil, "shell: "+err.Error())
	}
	defer errR.Close()
	tree, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c", command},
		Env: append(os.Environ(), taskEnv(tc)...), Dir: dir, Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		return Failed(nil, "shell: start: "+err.Error())
	}
	keep := tc.Log.LineKeep()
	var (
		wg       sync.WaitGroup
		last     line // the last non-empty stdout line
		errTail  []string
		tailLock sync.Mutex
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		readLines(outR, keep, func(l line) {
			tc.Log.Info(l.text)
			if l.nonEmpty() {
				last = l
			}
		})
	}()
	go func() {
		defer wg.Done()
		readLines(errR, keep, func(l line) {
			tc.Log.Warn(l.text)
			tailLock.Lock()
			errTail = append(errTail, TruncateText(l.text, MaxErrLine))
			if len(errTail) > 10 {
				errTail = errTail[1:]
			}
			tailLock.Unlock()
		})
	}()
	select {
	case <-tree.Done():
	case <-ctx.Done():
		tree.Stop()
	}
	state, err := tree.Wait()
	// The tree is gone, so the pipes are at EOF; should a process that escaped the
	// supervision still hold them, the output read so far is what the attempt keeps.
	readers := make(chan struct{})
	go func() { wg.Wait(); close(readers) }()
	select {
	case <-readers:
	case <-time.After(outputGrace):
		outR.Close()
		errR.Close()
		<-readers
	}
	if ctx.Err() != nil {
		return Failed(nil, "shell: killed: "+context.Cause(ctx).Error())
	}
	if err != nil {
		return Failed(nil, "shell: "+err.Error())
	}
	code := state.ExitCode()
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		msg := fmt.Sprintf("shell: killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
		if len(errTail) > 0 {
			msg += "\n" + strings.Join(errTail, "\n")
		}
		return Failed(nil, msg)
	}
	switch code {
	case 0:
		if last.size > engine.MaxXComBytes {
			return xcomTooLarge(last.size)
		}
		return engine.Result{State: scheduler.AttemptSuccess, ExitCode: &code, XCom: xcomOf(last.text)}
	case ExitSkip:
		return engine.Result{State: scheduler.AttemptSkipped, ExitCode: &code}
	}
	msg := fmt.Sprintf("shell: exit code %d", code)
	if len(errTail) > 0 {
		msg += "\n" + strings.Join(errTail, "\n")
	}
	return Failed(&code, msg)
}

// outputGrace bounds how long a finished tree's output may still be read.
const outputGrace = 2 * time.Second

// maxErrLine bounds each stderr line quoted in a failed shell task's error.
const MaxErrLine = 2000

func Failed(code *int, msg string) engine.Result {
	return engine.Result{State: scheduler.AttemptFailed, ExitCode: code, Error: msg}
}

// line is one line of output. A line longer than twice the reader's keep is kept as its
// first and last keep bytes around a `[… N bytes cut …]` marker; size is its true length.
type line struct {
	text string
	size int
	cut  bool
}

func (l line) nonEmpty() bool { return strings.TrimSpace(l.text) != "" }

// readLines splits r into lines of any length (no line is too long: memory stays bounded by
// keep), calling f for each, the last one too when it has no newline.
func readLines(r io.Reader, keep int, f func(line)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		head []byte // the line's first keep bytes, once it is longer than 2*keep
		buf  []byte // the rest; trimmed to its last keep bytes once head is set
		size int
	)
	emit := func() {
		l := line{size: size}
		if head == nil {
			l.text = string(buf)
		} else {
			tail := buf[max(len(buf)-keep, 0):]
			l.cut = true
			l.text = string(head) + fmt.Sprintf(" [… %d bytes cut …] ", size-len(head)-len(tail)) + string(tail)
		}
		f(l)
		head, buf, size = nil, buf[:0], 0
	}
	for {
		chunk, err := br.ReadSlice('\n')
		n := len(chunk)
		full := err == nil
		if full {
			chunk = bytes.TrimSuffix(chunk[:n-1], []byte("\r"))
		}
		size += len(chunk)
		buf = append(buf, chunk...)
		if head == nil && len(buf) > 2*keep {
			head = append([]byte(nil), buf[:keep]...)
			buf = append(buf[:0], buf[keep:]...)
		}
		if head != nil && len(buf) > 2*keep {
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		switch {
		case full:
			emit()
		case err == bufio.ErrBufferFull:
			continue
		default: // EOF or a closed pipe
			if size > 0 {
				emit()
			}
			_, _ = io.Copy(io.Discard, r)
			return
		}
	}
}

// xcomOf turns a task's last output line into its XCom value.
func xcomOf(line string) json.RawMessage {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	if json.Valid([]byte(line)) {
		return json.RawMessage(line)
	}
	b, _ := json.Marshal(line)
	return b
}

// taskEnv is the environment a task sees: its `with.env`, plus Airflow-like context.
func taskEnv(tc *Context) []string {
	env := []string{
		"UPDRAFT_DAG_ID=" + tc.Ref.DagID,
		"UPDRAFT_RUN_ID=" + tc.Ref.RunID,
		"UPDRAFT_TASK_ID=" + tc.Ref.TaskID,
		"UPDRAFT_TRY_NUMBER=" + strconv.Itoa(tc.Ref.TryNumber),
		"UPDRAFT_LOGICAL_DATE=" + tc.Run.LogicalDate.In(tc.DAG.Location()).Format(time.RFC3339),
		"UPDRAFT_DS=" + tc.Run.LogicalDate.In(tc.DAG.Location()).Format("2006-01-02"),
	}
	env = append(env, bundleEnv(tc)...)
	if m, ok := tc.Args["env"].(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+fmt.Sprint(m[k]))
		}
	}
	return env
}
