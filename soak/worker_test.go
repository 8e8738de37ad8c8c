//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLongTaskSucceedsOnce: a task that runs longer than 3 × the lease (and than every other
// internal timer shrunk by env) succeeds on its first try, its command ran exactly once,
// and its downstream runs once.
func TestLongTaskSucceedsOnce(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		lease string // "" : the default lease
		task  time.Duration
	}
	cases := []tc{{"lease2s_task7s", "2s", 7 * time.Second}}
	if long() {
		cases = []tc{{"lease20s_task70s", "20s", 70 * time.Second}, {"default_lease_task70s", "", 70 * time.Second}}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fig := newFigures(t)
			work := newWork(t)
			secs := fmt.Sprint(int(c.task.Seconds()))
			d := dagFile("id: soak_long",
				shellTask("long", "retries: 2\nretry_delay: 1s", "",
					rec(work, "long.log", "start")+"\nsleep "+secs+"\n"+rec(work, "long.log", "end")+"\necho done"),
				shellTask("after", "needs: [long]", "", rec(work, "after.log", "start")))
			var env []string
			if c.lease != "" {
				env = []string{"UPDRAFT_LEASE=" + c.lease, "UPDRAFT_REPUBLISH_AFTER=" + c.lease, "UPDRAFT_START_GRACE=" + c.lease}
			}
			s := startStack(t, work, stackOptions{Env: env, DAGs: map[string]string{"long.yaml": d}})
			started := time.Now()
			runID := s.trigger("soak_long")
			r := s.waitRun("soak_long", runID, c.task+3*time.Minute)
			lines := readLines(t, filepath.Join(work, "long.log"))
			long := r.task("long")
			fig["lease"], fig["task_seconds"], fig["run_state"], fig["task_try"] = c.lease, c.task.Seconds(), r.State, long.Try
			fig["executions"], fig["completions"] = count(lines, "start"), count(lines, "end")
			fig["run_seconds"] = time.Since(started).Round(time.Second).Seconds()
			if long.State != "success" || long.Try != 1 {
				t.Errorf("task long (sleep %s, lease %q) ended %s on try %d, want success on try 1; error: %s", secs, c.lease, long.State, long.Try, long.Error)
			}
			if n := count(lines, "start"); n != 1 {
				t.Errorf("task long's command started %d times, want exactly once", n)
			}
			if n := count(lines, "end"); n != 1 {
				t.Errorf("task long's command ran to its end %d times, want exactly once", n)
			}
			if r.State != "success" {
				t.Errorf("run %s ended %s, want success (tasks %s)", runID, r.State, summarise(r))
			}
			if n := count(readLines(t, filepath.Join(work, "after.log")), "start"); n != 1 {
				t.Errorf("the downstream task ran %d times, want once", n)
			}
		})
	}
}

// TestKilledWorkerTakesItsTask: kill -9 of the worker mid-task. Before the retry's first line
// is written no process of the first attempt is alive (the retry's command checks the pids
// the first one recorded, a `setsid` grandchild among them), the command ran at most twice,
// the executions did not overlap, and nothing of either attempt is left once the run is over.
func TestKilledWorkerTakesItsTask(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	killLeftovers(t, work)
	taskFor := pick(20*time.Second, 90*time.Second)
	lease := pick("2s", "10s")
	cmd := strings.Join([]string{
		rec(work, "victim.log", "start", "alive_prev="+alive(work, "victim.pids")),
		// The first try leaves a grandchild in a session of its own, as a daemonising
		// command would; the retry does not, so what is left at the end is the first's.
		`if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then setsid sleep 600 & ` + pids(work, "victim.pids", "$$", "$!") + `; fi`,
		fmt.Sprintf("sleep %d &", int(taskFor.Seconds())),
		pids(work, "victim.pids", "$!"),
		"wait $!",
		rec(work, "victim.log", "end"),
	}, "\n")
	d := dagFile("id: soak_kill", shellTask("victim", "retries: 1\nretry_delay: 1s", "", cmd))
	s := startStack(t, work, stackOptions{Env: []string{"UPDRAFT_LEASE=" + lease, "UPDRAFT_REPUBLISH_AFTER=" + lease},
		DAGs: map[string]string{"kill.yaml": d}})
	runID := s.trigger("soak_kill")

	var first []proc
	s.waitFor("the first try to record its 3 pids", 2*time.Minute, func() (bool, string) {
		first = readPids(t, filepath.Join(work, "victim.pids"))
		return len(first) >= 3, fmt.Sprintf("%d pids", len(first))
	})
	first = first[:3]
	// The worker is the process `updraft dev` started that the task shell descends from
	// (whatever sits between them: a supervisor, a warm worker's helpers).
	start := readLines(t, filepath.Join(work, "victim.log"))[0]
	worker, chain := workerOf(t, start.ShellPID, s.cmd.Process.Pid)
	fig["task_ancestry"] = chain
	if err := syscall.Kill(worker, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 worker %d: %v", worker, err)
	}
	killedAt := time.Now()
	t.Logf("killed worker pid %d (the task's ancestry: %v); the first try's processes: %v", worker, chain, first)

	// Note when the first try's processes are all gone.
	var (
		mu     sync.Mutex
		deadAt time.Time
	)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if len(liveOf(first)) == 0 {
				mu.Lock()
				deadAt = time.Now()
				mu.Unlock()
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	r := s.waitRun("soak_kill", runID, taskFor+3*time.Minute)
	lines := readLines(t, filepath.Join(work, "victim.log"))
	ex := executions(lines)
	mu.Lock()
	dead := deadAt
	mu.Unlock()
	fig["run_state"], fig["task_try"], fig["executions"], fig["lease"] = r.State, r.task("victim").Try, len(ex), lease
	if !dead.IsZero() {
		fig["first_try_dead_after_kill_s"] = dead.Sub(killedAt).Seconds()
	}
	if len(ex) > 1 {
		fig["retry_started_after_kill_s"] = ex[1].Start.At.Sub(killedAt).Seconds()
	}
	if len(ex) > 2 {
		t.Errorf("the command ran %d times, want at most twice", len(ex))
	}
	for _, e := range ex[1:] {
		for _, w := range e.Start.Words {
			if v, ok := strings.CutPrefix(w, "alive_prev="); ok {
				fig["alive_at_retry_start"] = v
				if v != "0" {
					t.Errorf("when try %d started, %s process(es) of the killed try were still alive (pids %v)", e.Start.Try, v, first)
				}
			}
		}
	}
	endOf := func(e execution) time.Time {
		if e.End != nil {
			return e.End.At
		}
		if e.Start.ShellPID == first[0].PID {
			return dead // zero if its processes never died: an open interval
		}
		return time.Time{}
	}
	if ov := overlaps(ex, endOf); len(ov) > 0 {
		fig["overlaps"] = len(ov)
		t.Errorf("executions overlapped:\n%s", strings.Join(ov, "\n"))
	}
	if len(ex) > 0 && ex[0].End != nil {
		t.Errorf("the killed try's command ran to its end at %s (its worker was killed at %s)", ex[0].End.At.Format(time.RFC3339Nano), killedAt.Format(time.RFC3339Nano))
	}
	if r.State != "success" {
		t.Errorf("run ended %s, want success from the retry (task: %s, try %d, error %q)", r.State, r.task("victim").State, r.task("victim").Try, r.task("victim").Error)
	}
	all := readPids(t, filepath.Join(work, "victim.pids"))
	if left := liveOf(all); len(left) > 0 {
		fig["leftover_processes"] = len(left)
		t.Errorf("after the run finished, %d process(es) the task started are still alive: %v", len(left), left)
	}
}

// TestTimeoutKillsSetsidChild: a 3 s timeout on a command that starts `setsid sleep 600 &`
// (which keeps the output pipe open) ends the task failed within the timeout plus a grace,
// and leaves no process of it.
func TestTimeoutKillsSetsidChild(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	killLeftovers(t, work)
	const timeout = 3 * time.Second
	grace := envDuration(t, "UPDRAFT_SOAK_TIMEOUT_GRACE", 20*time.Second)
	cmd := strings.Join([]string{
		rec(work, "bounded.log", "start"),
		"setsid sleep 600 &",
		pids(work, "bounded.pids", "$$", "$!"),
		"sleep 600 &",
		pids(work, "bounded.pids", "$!"),
		"wait $!",
		rec(work, "bounded.log", "end"),
	}, "\n")
	d := dagFile("id: soak_timeout", shellTask("bounded", "timeout: 3s\nretries: 0", "", cmd))
	s := startStack(t, work, stackOptions{Env: []string{"UPDRAFT_LEASE=2s"}, DAGs: map[string]string{"timeout.yaml": d}})
	runID := s.trigger("soak_timeout")
	var ps []proc
	s.waitFor("the task to record its 3 pids", 2*time.Minute, func() (bool, string) {
		ps = readPids(t, filepath.Join(work, "bounded.pids"))
		return len(ps) >= 3, fmt.Sprintf("%d pids", len(ps))
	})
	started := readLines(t, filepath.Join(work, "bounded.log"))[0].At

	// Bounded: the task must be over by timeout + grace; past that, wait on to measure how
	// late it was, and fail.
	deadline := started.Add(timeout + grace)
	var r *runDetail
	for {
		var err error
		r, err = s.run("soak_timeout", runID)
		if err == nil && r.task("bounded").State != "running" && r.task("bounded").State != "queued" {
			break
		}
		if time.Now().After(deadline.Add(3 * time.Minute)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	seenAt := time.Now()
	task := r.task("bounded")
	fig["task_state"], fig["ended_after_start_s"] = task.State, seenAt.Sub(started).Round(100*time.Millisecond).Seconds()
	if seenAt.After(deadline) {
		t.Errorf("the task was %s %s after its command started, past its %s timeout + %s grace", task.State, seenAt.Sub(started).Round(time.Second), timeout, grace)
	}
	if task.State != "failed" {
		t.Errorf("the task ended %s, want failed by its timeout (error %q)", task.State, task.Error)
	}
	// The processes die before the outcome is recorded; allow the kernel a moment to reap.
	var left []proc
	for end := time.Now().Add(2 * time.Second); ; {
		if left = liveOf(ps); len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fig["leftover_processes"] = len(left)
	if len(left) > 0 {
		t.Errorf("after the task ended %s, %d process(es) it started are alive: %v", task.State, len(left), left)
	}
	if n := count(readLines(t, filepath.Join(work, "bounded.log")), "end"); n > 0 {
		t.Errorf("the command ran to its end (%d time(s)) although its timeout had passed", n)
	}
}

// TestLongLineXCom: a task printing a 2 MiB line and then `last` has XCom "last", as the API
// shows it and as a downstream template `{{ xcom "big" }}` renders it, and `updraft logs`
// shows the `last` line.
func TestLongLineXCom(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	out := filepath.Join(work, "use.out")
	d := dagFile("id: soak_xcom",
		shellTask("big", "retries: 0", "", rec(work, "big.log", "start")+"\nhead -c 2097152 /dev/zero | tr '\\0' x\necho\necho last"),
		shellTask("use", "needs: [big]\nretries: 0", `env: {XV: '{{ xcom "big" }}'}`, fmt.Sprintf(`printf '%%s\n' "$XV" > '%s'`, out)))
	s := startStack(t, work, stackOptions{DAGs: map[string]string{"xcom.yaml": d}})
	runID := s.trigger("soak_xcom")
	r := s.waitRun("soak_xcom", runID, 3*time.Minute)
	big := r.task("big")
	fig["run_state"], fig["big_state"] = r.State, big.State
	if big.State != "success" {
		t.Fatalf("task big ended %s, want success: %s", big.State, big.Error)
	}
	a, err := s.attemptDetail("soak_xcom", runID, "big", big.Try)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	_ = json.Unmarshal(a.XCom, &x)
	fig["xcom"] = fmt.Sprintf("%.60s", string(a.XCom))
	if x != "last" {
		t.Errorf(`XCom of big is %.80s, want "last" (the line after a 2 MiB line)`, string(a.XCom))
	}
	if b, err := os.ReadFile(out); err != nil || strings.TrimSpace(string(b)) != "last" {
		t.Errorf(`the downstream's {{ xcom "big" }} rendered %.80q (%v), want "last"`, string(b), err)
	}
	if n := count(readLines(t, filepath.Join(work, "big.log")), "start"); n != 1 {
		t.Errorf("task big ran %d times, want once", n)
	}
	// The log keeps the line after the long one (2 MiB is under any sensible cap).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logOut, err := s.cli(ctx, "logs", "soak_xcom/"+runID, "big")
	if err != nil {
		t.Errorf("updraft logs soak_xcom/%s big: %v: %.300s", runID, err, logOut)
	}
	hasLast := false
	for _, l := range strings.Split(logOut, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "last") && len(l) < 1000 {
			hasLast = true
		}
	}
	fig["log_bytes"], fig["log_has_last"] = len(logOut), hasLast
	if !hasLast {
		t.Errorf("updraft logs printed no `last` line after the long one (lines of any length must be handled); its end: %q", logOut[max(0, len(logOut)-300):])
	}
}

// workerOf walks up from a task's shell to the child of `updraft dev` it descends from: the
// worker the dispatcher started. chain names the processes on the way, shell first.
func workerOf(t *testing.T, shell, dev int) (int, []string) {
	t.Helper()
	var chain []string
	for p := shell; len(chain) < 32; {
		chain = append(chain, proc{PID: p}.String())
		_, _, parent, ok := procStat(p)
		if !ok {
			t.Fatalf("pid %d of the task's ancestry is gone (ancestry so far: %v)", p, chain)
		}
		if parent == dev {
			return p, chain
		}
		if parent <= 1 {
			t.Fatalf("the task's shell does not descend from updraft dev (pid %d): %v", dev, chain)
		}
		p = parent
	}
	t.Fatalf("no child of updraft dev within 32 ancestors of the task's shell: %v", chain)
	return 0, nil
}
