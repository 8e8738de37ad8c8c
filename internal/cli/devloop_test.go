package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// appendDAG writes a scheduled DAG whose one shell task appends a line to a file, so the
// file's lines count the task's executions. Unpaused and scheduled, it would get a run of
// its own from any tick that saw it deployed.
func appendDAG(t *testing.T, id string) (file, counter string) {
	t.Helper()
	dir := t.TempDir()
	counter = filepath.Join(dir, "executions.txt")
	file = filepath.Join(dir, id+".yaml")
	src := fmt.Sprintf(`id: %s
owner: data-eng@example.com
schedule: "@daily"
start: 2025-01-01
tasks:
  - id: append
    type: shell
    with: {command: 'echo "$UPDRAFT_DS" >> %s'}
`, id, counter)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, counter
}

func lineCount(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestUpdraftTestStandaloneRunsOnceAgainAndAgain runs the binary as a user would, without
// `make dev`, on a machine whose BigQuery cache is empty: each `updraft test` executes the
// task exactly once (no scheduled run besides the test run), can be repeated for the same
// date, prints only its progress table on stdout, and never builds the BigQuery emulator
// for a shell-only DAG.
func TestUpdraftTestStandaloneRunsOnceAgainAndAgain(t *testing.T) {
	bin := strings.TrimSuffix(workerCmd, " worker")
	file, counter := appendDAG(t, "appends")
	cache, home := t.TempDir(), t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "UPDRAFT_HOME=" + home, "UPDRAFT_CACHE=" + cache,
		"UPDRAFT_WORKER_CMD=" + workerCmd,
		"FIRESTORE_EMULATOR_HOST=" + os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST=" + os.Getenv("PUBSUB_EMULATOR_HOST"),
	}
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, bin, "test", file, "--date", "2025-01-15")
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("updraft test #%d: %v\nstdout:\n%s\nstderr:\n%s", i, err, out.String(), errb.String())
		}
		if n := lineCount(t, counter); n != i {
			t.Fatalf("after %d test(s) the task ran %d time(s); want %d\nstdout:\n%s", i, n, i, out.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "{") || strings.Contains(line, "level=") {
				t.Fatalf("stdout has a log line, not only the progress table: %q\n%s", line, out.String())
			}
		}
		if !strings.Contains(out.String(), "run manual__2025-01-15T00:00:00Z: success") {
			t.Fatalf("stdout lacks the outcome:\n%s", out.String())
		}
		if !strings.Contains(errb.String(), "the stack's log: ") {
			t.Fatalf("stderr does not name the stack's log:\n%s", errb.String())
		}
	}
	if b, _ := os.ReadFile(counter); string(b) != "2025-01-15\n2025-01-15\n2025-01-15\n" {
		t.Fatalf("executions:\n%s\nwant three for 2025-01-15 only", b)
	}
	left, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("a shell-only updraft test touched the BigQuery cache %s: %v", cache, left)
	}
}

// TestUpdraftTestWithDevRunningCanBeRepeated runs `updraft test` three times for one date
// against a running `updraft dev`: each replaces the previous test run, executes the task
// once, and exits 0; the test DAG never gets a scheduled run of its own.
func TestUpdraftTestWithDevRunningCanBeRepeated(t *testing.T) {
	home, dagDir := t.TempDir(), t.TempDir()
	broken := "id: broken_one\nowner: data-eng@example.com\nschedule: \"61 * * * *\"\ntasks:\n  - {id: a, type: noop}\n"
	if err := os.WriteFile(filepath.Join(dagDir, "broken_one.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	hourly := "id: hourly_in_dev\nowner: data-eng@example.com\nschedule: \"@hourly\"\nstart: 2025-01-01\ntasks:\n  - {id: a, type: noop}\n"
	if err := os.WriteFile(filepath.Join(dagDir, "hourly_in_dev.yaml"), []byte(hourly), 0o644); err != nil {
		t.Fatal(err)
	}
	// dev reads the engine's settings as every entry point does: its runs expire after 3 days.
	env := map[string]string{"UPDRAFT_HOME": home, "UPDRAFT_WORKER_CMD": workerCmd, "UPDRAFT_RETENTION": "3d"}
	project := emutest.Project(t)
	ctx, cancel := context.WithCancel(context.Background())
	devDone := make(chan string)
	go func() {
		var out, errb bytes.Buffer
		app := &App{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] }}
		code := app.Run(ctx, []string{"dev", "--addr", "127.0.0.1:0", "--tick", "0.5", "--project", project, dagDir})
		devDone <- fmt.Sprintf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}()
	defer func() {
		cancel()
		if s := <-devDone; !strings.HasPrefix(s, "exit 0") {
			t.Errorf("updraft dev: %s", s)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(home, "dev.json")); err == nil {
			break
		}
		select {
		case s := <-devDone:
			devDone <- s
			t.Fatalf("updraft dev ended: %s", s)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("updraft dev did not start within a minute")
		}
	}
	file, counter := appendDAG(t, "appends_in_dev")
	for i := 1; i <= 3; i++ {
		out, errOut, code := run(t, env, "test", file, "--date", "2025-01-15")
		if code != 0 || !strings.Contains(out, "as test__appends_in_dev in the running make dev") {
			t.Fatalf("updraft test #%d with dev running: exit %d\n%s\n%s", i, code, out, errOut)
		}
		if n := lineCount(t, counter); n != i {
			t.Fatalf("after %d test(s) the task ran %d time(s); want %d", i, n, i)
		}
	}
	out, errOut, code := run(t, env, "runs", "list", "test__appends_in_dev")
	if code != 0 || strings.Count(out, "__") != 1 || !strings.Contains(out, "manual__2025-01-15") {
		t.Fatalf("runs of the test DAG: exit %d\n%s%s\nwant the one test run", code, out, errOut)
	}

	// dags list: the DAG file that fails to load is there with its first error; the test
	// DAG is not (unless --all).
	out, errOut, code = run(t, env, "dags", "list")
	if code != 0 || !strings.Contains(out, "problem(s) in DAG files that failed to load") ||
		!strings.Contains(out, "broken_one.yaml:3: schedule:") ||
		strings.Contains(out, "test__appends_in_dev") || !strings.Contains(out, "1 test DAG(s)") {
		t.Fatalf("dags list: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, _ := run(t, env, "dags", "list", "--all"); !strings.Contains(out, "test__appends_in_dev") {
		t.Fatalf("dags list --all lacks the test DAG:\n%s", out)
	}

	st, err := fsstore.Open(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var runs []fsstore.Versioned[scheduler.Run]
	for deadline := time.Now().Add(30 * time.Second); len(runs) == 0; {
		if runs, err = st.ListRuns(context.Background(), "hourly_in_dev", 5); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("dev's tick made no run of hourly_in_dev within 30s")
		}
		time.Sleep(100 * time.Millisecond) // polling the store for the tick's run (a condition, bounded)
	}
	r := runs[0].Rec
	if got := r.ExpireAt.Sub(r.CreatedAt); got != 72*time.Hour {
		t.Fatalf("dev's run expires %s after its creation; want UPDRAFT_RETENTION=3d", got)
	}
}

// TestOneRunPerLogicalDate: a manual run and a backfill for one logical date make one run,
// whichever comes first; the second manual trigger is refused naming the run that has it.
func TestOneRunPerLogicalDate(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
	}
	asFirstAdmin(t, env)
	must := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, env, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("updraft %s: exit %d\n%s%s\nwant %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	must("created", "dags", "deploy", "testdata/seoul_daily.yaml")
	// seoul_daily runs at 00:05 KST: the interval of 2025-01-02 starts 2025-01-01T15:05:00Z.
	// Manual first, then a backfill over that date: the backfill finds the manual run.
	must("triggered seoul_daily/manual__2025-01-01T15:05:00Z", "trigger", "seoul_daily", "--logical-date", "2025-01-02T00:05:00+09:00")
	must("1 interval(s)", "backfill", "seoul_daily", "--from", "2025-01-02", "--to", "2025-01-02", "--no-wait")
	// Backfill first, then a manual trigger for a date of it: refused, naming the backfill run.
	must("1 interval(s)", "backfill", "seoul_daily", "--from", "2025-01-03", "--to", "2025-01-03", "--no-wait")
	must("", "tick")
	must("", "tick")
	_, errOut, code := run(t, env, "trigger", "seoul_daily", "--logical-date", "2025-01-03T00:05:00+09:00")
	if code != 1 || !strings.Contains(errOut, "seoul_daily/backfill__2025-01-02T15:05:00Z") || !strings.Contains(errOut, "--replace") {
		t.Fatalf("manual trigger over a backfill run: exit %d\n%s\nwant a refusal naming the backfill run", code, errOut)
	}
	out := must("", "runs", "list", "seoul_daily")
	if n := strings.Count(out, "2025-01-01T15:05:00Z"); n != 1 {
		t.Fatalf("runs for logical date 2025-01-02 (KST): %d\n%s", n, out)
	}
	if n := strings.Count(out, "2025-01-02T15:05:00Z"); n != 1 {
		t.Fatalf("runs for logical date 2025-01-03 (KST): %d\n%s", n, out)
	}
	// Refused again, this time for the manual run's date.
	_, errOut, code = run(t, env, "trigger", "seoul_daily", "--logical-date", "2025-01-02T00:05:00+09:00")
	if code != 1 || !strings.Contains(errOut, "seoul_daily/manual__2025-01-01T15:05:00Z") {
		t.Fatalf("second manual trigger: exit %d\n%s", code, errOut)
	}
}
