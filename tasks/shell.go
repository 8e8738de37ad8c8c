package tasks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// ExitSkip is the exit code that makes a shell task end skipped (Airflow's 99).
const ExitSkip = 99

// runShell runs `with.command` with /bin/sh in its own process group (so a timeout kills the
// whole tree), with `with.env` added to the worker's environment and `with.cwd` as working
// directory. Exit 0 → success, 99 → skipped, else failed. The last stdout line is the XCom
// value: JSON if it parses, else a string.
func runShell(ctx context.Context, tc *Context) engine.Result {
	command, _ := tc.Args["command"].(string)
	if strings.TrimSpace(command) == "" {
		return failed(nil, "shell: with.command is empty")
	}
	var err error
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), taskEnv(tc)...)
	cwd, _ := tc.Args["cwd"].(string)
	if cmd.Dir, err = workDir(tc, cwd); err != nil {
		return failed(nil, "shell: "+err.Error())
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return failed(nil, "shell: "+err.Error())
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return failed(nil, "shell: "+err.Error())
	}
	if err := cmd.Start(); err != nil {
		return failed(nil, "shell: start: "+err.Error())
	}
	var (
		wg       sync.WaitGroup
		lastOut  string
		errTail  []string
		tailLock sync.Mutex
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		scanLines(stdout, func(s string) {
			tc.Log.Info(s)
			if strings.TrimSpace(s) != "" {
				lastOut = s
			}
		})
	}()
	go func() {
		defer wg.Done()
		scanLines(stderr, func(s string) {
			tc.Log.Warn(s)
			tailLock.Lock()
			errTail = append(errTail, s)
			if len(errTail) > 10 {
				errTail = errTail[1:]
			}
			tailLock.Unlock()
		})
	}()
	wg.Wait()
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		return failed(nil, "shell: killed: "+context.Cause(ctx).Error())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return failed(&code, "shell: "+err.Error())
	}
	switch code {
	case 0:
		return engine.Result{State: scheduler.AttemptSuccess, ExitCode: &code, XCom: xcomOf(lastOut)}
	case ExitSkip:
		return engine.Result{State: scheduler.AttemptSkipped, ExitCode: &code}
	}
	msg := fmt.Sprintf("shell: exit code %d", code)
	if len(errTail) > 0 {
		msg += "\n" + strings.Join(errTail, "\n")
	}
	return failed(&code, msg)
}

func failed(code *int, msg string) engine.Result {
	return engine.Result{State: scheduler.AttemptFailed, ExitCode: code, Error: msg}
}

func scanLines(r io.Reader, f func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f(sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
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
		"UPDRAFT_TRY_NUMBER=" + itoa(tc.Ref.TryNumber),
		"UPDRAFT_LOGICAL_DATE=" + tc.Run.LogicalDate.In(tc.DAG.Location()).Format(time.RFC3339),
		"UPDRAFT_DS=" + tc.Run.IntervalStart.In(tc.DAG.Location()).Format("2006-01-02"),
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
