package local_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/scheduler"
)

// Attacks on "every task runs once; nothing lost or stuck when a process dies", with the
// attempts kept on their task instance, on the local stack with real worker processes.

// attemptStates lists a task's attempts, oldest first, as "try:state".
func (s *stackBundle) attemptStates(t *testing.T, r *scheduler.Run, task string) []string {
	t.Helper()
	as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%d:%s", a.Rec.TryNumber, a.Rec.State)
	}
	return out
}

// Six deliveries of one attempt reach the dispatcher at once (besides the first publish):
// each starts a worker process, all race the claim, and the command runs once.
func TestDuplicateDeliveriesOfOneAttemptRunItOnce(t *testing.T) {
	s := startStack(t, 2*time.Second)
	s.ticking(t)
	runs := filepath.Join(t.TempDir(), "runs")
	r := s.deployAndTrigger(t, "dup", fmt.Sprintf(`id: dup
owner: owner@example.com
tasks:
  - id: once
    type: shell
    with: {command: 'echo "ran $$" >> %s; sleep 1'}
`, runs))
	var ti scheduler.TaskInstance
	s.until(t, "the task to be queued", func() bool {
		v, err := s.stack.Engine.TaskInstance(s.ctx, r.DagID, r.RunID, "once")
		if err == nil {
			ti = v.Rec
		}
		return err == nil && ti.AttemptID != ""
	})
	spawned := s.stack.Dispatcher.Spawned.Load()
	msg, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ti.Ref(), Type: "shell"})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := s.stack.Dispatcher.Handle(s.ctx, msg); err != nil {
				t.Error(err)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			if err := s.stack.Queue.PublishTask(s.ctx, msg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	// Every delivery has had its worker by now: the two published ones may still be on the way.
	s.until(t, "every delivery to start its worker", func() bool { return s.stack.Dispatcher.Spawned.Load()-spawned >= 6 })
	s.until(t, "every worker to exit", func() bool { return len(s.stack.Dispatcher.Running()) == 0 })
	// Each of the six was dropped by its own worker, at the claim.
	if n := strings.Count(s.stderr.String(), `"message":"attempt dropped","attempt_id":"`+ti.AttemptID); n != 6 {
		t.Fatalf("%d workers dropped the attempt; want the 6 duplicates each dropped by its worker", n)
	}
	if got := lines(t, runs); len(got) != 1 {
		t.Fatalf("one attempt delivered 7 times ran %d times: %v", len(got), got)
	}
	if got := s.attemptStates(t, r, "once"); len(got) != 1 || got[0] != "1:success" {
		t.Fatalf("attempts %v; want one, success", got)
	}
}

// A shell task fails twice and succeeds on its third try: the CLI's logs (the console's
// attempt reads) list every try oldest first with its state, and each try's own log is
// still readable.
func TestRetriesKeepEveryTryAndItsLog(t *testing.T) {
	s := startStack(t, 2*time.Second)
	r := s.deployAndTrigger(t, "flaky", `id: flaky
owner: owner@example.com
tasks:
  - id: f
    type: shell
    retries: 2
    retry_delay: 0s
    with: {command: 'echo "output of try $UPDRAFT_TRY_NUMBER"; [ "$UPDRAFT_TRY_NUMBER" = 3 ]'}
`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		v, err := s.stack.Store.GetRun(s.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Rec.State.Finished() {
			if v.Rec.State != scheduler.RunSuccess {
				t.Fatalf("run %s; want success on try 3", v.Rec.State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not finish; attempts %v", s.attemptStates(t, r, "f"))
		}
		time.Sleep(50 * time.Millisecond) // polling the store
	}
	want := []string{"1:failed", "2:failed", "3:success"}
	if got := s.attemptStates(t, r, "f"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("attempts %v; want %v", got, want)
	}
	out, errOut, code := s.cli("logs", r.DagID+"/"+r.RunID, "f")
	if code != 0 {
		t.Fatalf("logs: exit %d: %s", code, errOut)
	}
	for try, state := range map[int]string{1: "failed", 2: "failed", 3: "success"} {
		head := fmt.Sprintf("=== try %d · attempt ", try)
		i := strings.Index(out, head)
		if i < 0 || !strings.Contains(out[i:min(len(out), i+120)], "· "+state+" ·") {
			t.Fatalf("logs lack try %d as %s:\n%s", try, state, out)
		}
	}
	last := -1
	for try := 1; try <= 3; try++ {
		if i, j := strings.Index(out, fmt.Sprintf("=== try %d ", try)), strings.Index(out, fmt.Sprintf("output of try %d", try)); j < i || i < last {
			t.Fatalf("try %d's header or its output is missing or out of order:\n%s", try, out)
		} else {
			last = j
		}
		one, _, code := s.cli("logs", r.DagID+"/"+r.RunID, "f", "--try", fmt.Sprint(try))
		if code != 0 || !strings.Contains(one, fmt.Sprintf("output of try %d", try)) ||
			strings.Contains(one, fmt.Sprintf("output of try %d", 1+try%3)) {
			t.Fatalf("logs --try %d: exit %d, want its own output only:\n%s", try, code, one)
		}
	}
}

// A worker is SIGKILLed mid-task with a 2 s lease: the tick declares its attempt lost once
// none of its processes is left, the retry runs (never beside it), the run succeeds, and the
// attempt history and logs show both tries: lost, then success.
func TestKilledWorkerShowsBothTriesInItsHistory(t *testing.T) {
	s := startStack(t, 2*time.Second)
	dir := t.TempDir()
	runs, pids := filepath.Join(dir, "runs"), filepath.Join(dir, "pids")
	r := s.deployAndTrigger(t, "killed", fmt.Sprintf(`id: killed
owner: owner@example.com
tasks:
  - id: nap
    type: shell
    retries: 1
    retry_delay: 0s
    with:
      command: |
        echo "start $UPDRAFT_TRY_NUMBER" >> %[1]s
        echo "log of try $UPDRAFT_TRY_NUMBER"
        if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then echo $$ >> %[2]s; sleep 600; fi
        for p in $(cat %[2]s); do
          if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo "overlap $p" >> %[1]s; fi
        done
`, runs, pids))
	s.until(t, "the first try to start", func() bool { return len(lines(t, pids)) == 1 })
	workers := s.busyWorkers()
	if len(workers) != 1 {
		t.Fatalf("running workers %v; want 1", workers)
	}
	if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.ticking(t)
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success on the retry", got)
	}
	if got := lines(t, runs); strings.Join(got, " ") != "start_1 start_2" {
		t.Fatalf("runs %v; want try 1 then try 2, no overlap", got)
	}
	var pid int
	fmt.Sscan(lines(t, pids)[0], &pid)
	if proctree.Alive(pid) {
		t.Fatalf("the killed try's shell %d still runs", pid)
	}
	if got := s.attemptStates(t, r, "nap"); strings.Join(got, " ") != "1:lost 2:success" {
		t.Fatalf("attempts %v; want 1:lost 2:success", got)
	}
	out, _, code := s.cli("logs", r.DagID+"/"+r.RunID, "nap")
	if code != 0 || !strings.Contains(out, "· lost ·") || !strings.Contains(out, "log of try 1") ||
		!strings.Contains(out, "lost worker") || !strings.Contains(out, "log of try 2") {
		t.Fatalf("logs (exit %d) lack a try, its state or its output:\n%s", code, out)
	}
}

// A task running for several lease periods (renewing on its instance while the tick runs) is
// cleared: its command is stopped before it ends, the new try runs once and the run
// succeeds; the history shows the cleared try ended, then the new one.
//
// Before the clear cancelled the execution, the cleared try's worker learned it only at its
// next renewal, and the new try started beside it (every time, with a 2 s lease).
//
// Here the mark and the clear come from the CLI, in-process but with an engine of its own,
// as `updraft tasks clear` from another terminal would.
func TestClearedLongTaskStopsAndItsNewTryRunsOnce(t *testing.T) {
	s := startStack(t, 2*time.Second)
	testClearedLongTask(t, s, func(r *scheduler.Run) {
		out, errOut, code := s.cli("tasks", "clear", r.DagID+"/"+r.RunID, "long")
		if code != 0 {
			t.Fatalf("tasks clear: exit %d: %s%s", code, out, errOut)
		}
	})
}

// The same on a warm worker, whose one attempt the clear (by the stack's own engine, which
// runs the pool) cancels.
func TestPoolClearedLongTaskStopsAndItsNewTryRunsOnce(t *testing.T) {
	s := startStackWith(t, 2*time.Second, nil, 1)
	testClearedLongTask(t, s, func(r *scheduler.Run) {
		if _, err := s.stack.Engine.ClearTasks(s.ctx, r.DagID, r.RunID, []string{"long"}, false, false); err != nil {
			t.Fatal(err)
		}
	})
}

func testClearedLongTask(t *testing.T, s *stackBundle, clear func(*scheduler.Run)) {
	s.ticking(t)
	dir := t.TempDir()
	runs, pids := filepath.Join(dir, "runs"), filepath.Join(dir, "pids")
	r := s.deployAndTrigger(t, "cleared", fmt.Sprintf(`id: cleared
owner: owner@example.com
tasks:
  - id: long
    type: shell
    with:
      command: |
        echo "start $UPDRAFT_TRY_NUMBER" >> %[1]s
        echo "log of try $UPDRAFT_TRY_NUMBER"
        if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then echo $$ >> %[2]s; sleep 15; echo "end 1" >> %[1]s; exit 0; fi
        for p in $(cat %[2]s); do
          if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo "overlap $p" >> %[1]s; fi
        done
        echo "end $UPDRAFT_TRY_NUMBER" >> %[1]s
`, runs, pids))
	// Marked, then cleared, once it has outlived two and a half lease periods (renewing).
	s.until(t, "the first try to outlive two and a half leases", func() bool {
		v, err := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "long")
		if err != nil || v.Rec.Attempt == nil {
			return false
		}
		a := v.Rec.Attempt
		return a.State == scheduler.AttemptRunning && a.LeaseExpiresAt.Sub(a.StartedAt) > 7*time.Second
	})
	// A mark is refused while it runs (its result would race the mark).
	out, errOut, code := s.cli("tasks", "mark", r.DagID+"/"+r.RunID, "long", "success")
	if code == 0 || !strings.Contains(out+errOut, "running") {
		t.Fatalf("tasks mark of a running task: exit %d: %s%s; want refused, saying it runs", code, out, errOut)
	}
	if v, err := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "long"); err != nil || v.Rec.State != scheduler.TaskRunning || v.Rec.TryNumber != 1 {
		t.Fatalf("after the refused mark: %+v %v; want still running try 1", v, err)
	}
	clear(r)
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success on the new try", got)
	}
	var pid int
	fmt.Sscan(lines(t, pids)[0], &pid)
	s.until(t, "the cleared try's shell to stop", func() bool { return !proctree.Alive(pid) })
	got := strings.Join(lines(t, runs), " ")
	if strings.Contains(got, "end_1") || !strings.HasPrefix(got, "start_1 start_2") || !strings.HasSuffix(got, "end_2") {
		t.Fatalf("runs %q; want try 1 stopped before its end, try 2 run once", got)
	}
	if strings.Contains(got, "overlap") {
		t.Errorf("the cleared try's command still ran when the new try started: %q", got)
	}
	as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, "long")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Rec.State != scheduler.AttemptFailed || as[0].Rec.EndedAt == nil || as[1].Rec.State != scheduler.AttemptSuccess {
		t.Fatalf("attempts %v; want the cleared try failed (stopped), then success", s.attemptStates(t, r, "long"))
	}
	t.Logf("cleared try: %s", as[0].Rec.Error)
	for try := 1; try <= 2; try++ {
		out, _, code := s.cli("logs", r.DagID+"/"+r.RunID, "long", "--try", fmt.Sprint(try))
		if code != 0 || !strings.Contains(out, fmt.Sprintf("log of try %d", try)) {
			t.Fatalf("logs --try %d (exit %d) lack its output:\n%s", try, code, out)
		}
	}
	if ti := mustTI(t, s, r, "long"); ti.TryNumber != 2 || ti.State != scheduler.TaskSuccess {
		t.Fatalf("long is %s try %d; want success on try 2", ti.State, ti.TryNumber)
	}
}

// An inline attempt (an http task) runs inside the dev process itself. `updraft tasks clear`
// from another terminal cancels the cleared attempt's execution: that must not be a SIGTERM
// to the whole dev process (here, the test process, which runs the stack).
func TestCLIClearOfARunningInlineTaskLeavesTheDevProcessAlone(t *testing.T) {
	testCLIOfARunningInlineTask(t, "", "tasks", "clear", "{run}", "call")
}

// The same with `updraft tick` from another terminal finding the run's dagrun_timeout passed:
// it fails the run and cancels the running inline attempt, without signalling the dev process.
func TestCLITickTimingOutARunningInlineTaskLeavesTheDevProcessAlone(t *testing.T) {
	testCLIOfARunningInlineTask(t, "dagrun_timeout: 1s\n", "tick")
}

func testCLIOfARunningInlineTask(t *testing.T, dagExtra string, args ...string) {
	s := startStack(t, 2*time.Second)
	timeout := dagExtra != ""
	if !timeout {
		s.ticking(t) // else only the CLI's tick times the run out
	}
	var mu sync.Mutex
	requests := 0
	release := make(chan struct{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if n == 1 {
			<-release // the first try hangs until the test lets it go
		}
		fmt.Fprint(w, `{"ok": true}`)
	}))
	defer api.Close()
	defer close(release)
	r := s.deployAndTrigger(t, "inline", `id: inline
owner: owner@example.com
`+dagExtra+`tasks:
  - id: call
    type: http
    with: {url: "`+api.URL+`/slow"}
`)
	s.until(t, "the inline attempt to call the API", func() bool { mu.Lock(); defer mu.Unlock(); return requests == 1 })
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if timeout {
		v, err := s.stack.Store.GetRun(s.ctx, r.DagID, r.RunID)
		if err != nil || v.Rec.StartedAt == nil {
			t.Fatalf("run %+v %v; want started", v, err)
		}
		s.until(t, "the run's dagrun_timeout to pass", func() bool { return time.Now().After(v.Rec.StartedAt.Add(1100 * time.Millisecond)) })
	}
	for i, a := range args {
		if a == "{run}" {
			args[i] = r.DagID + "/" + r.RunID
		}
	}
	cmd := exec.Command(updraftBin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("updraft %v: %v\n%s", args, err, out)
	}
	want := scheduler.RunSuccess
	if timeout {
		want = scheduler.RunFailed
	}
	if got := s.waitRun(t, r); got != want {
		t.Fatalf("run %s; want %s", got, want)
	}
	select {
	case <-sigs:
		t.Fatalf("`updraft %s` sent SIGTERM to the dev process running the inline attempt", strings.Join(args, " "))
	default:
	}
	if ti := mustTI(t, s, r, "call"); !timeout && ti.TryNumber != 2 {
		t.Fatalf("call is on try %d; want success on try 2", ti.TryNumber)
	}
}

// parentPid reads a process's parent from /proc (0 when it is gone).
func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b[strings.LastIndexByte(string(b), ')')+1:]), " ")
	if !ok {
		return 0
	}
	var state string
	var ppid int
	fmt.Sscan(rest, &state, &ppid)
	return ppid
}

// workerOf finds the worker process (one of workers) a task's shell runs under.
func workerOf(shell int, workers []int) int {
	for p := shell; p > 1; p = parentPid(p) {
		for _, w := range workers {
			if p == w {
				return w
			}
		}
	}
	return 0
}

// Twelve tasks run at once, each for three 2 s leases, and the workers of four of them are
// SIGKILLed mid-task while the tick runs every 200 ms: every task finishes exactly once
// (its command's end written once), the four killed ones on a retry that never ran beside
// the killed try, and each history is what happened: lost then success for the four,
// success alone for the eight others.
func TestKilledWorkersAmongManyEachTaskFinishesOnce(t *testing.T) {
	s := startStack(t, 2*time.Second)
	s.ticking(t)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	var src strings.Builder
	src.WriteString("id: many\nowner: owner@example.com\ntasks:\n")
	const n = 12
	for i := range n {
		fmt.Fprintf(&src, `  - id: t%d
    type: shell
    retries: 1
    retry_delay: 0s
    with:
      command: |
        echo "start $UPDRAFT_TASK_ID $UPDRAFT_TRY_NUMBER" >> %[2]s
        echo $$ > %[3]s/$UPDRAFT_TASK_ID.$UPDRAFT_TRY_NUMBER
        if [ "$UPDRAFT_TRY_NUMBER" = 2 ]; then
          p=$(cat %[3]s/$UPDRAFT_TASK_ID.1)
          if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo "overlap $UPDRAFT_TASK_ID" >> %[2]s; fi
          sleep 1
        else
          sleep 6
        fi
        echo "end $UPDRAFT_TASK_ID" >> %[2]s
`, i, runs, dir)
	}
	r := s.deployAndTrigger(t, "many", src.String())
	shells := map[string]int{}
	s.until(t, "every task's first try to start", func() bool {
		for i := range n {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("t%d.1", i)))
			if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
				return false
			}
			var pid int
			fmt.Sscan(string(b), &pid)
			shells[fmt.Sprintf("t%d", i)] = pid
		}
		return true
	})
	workers := s.stack.Dispatcher.Running()
	killed := map[string]bool{}
	for _, task := range []string{"t0", "t3", "t6", "t9"} {
		w := workerOf(shells[task], workers)
		if w == 0 {
			t.Fatalf("no worker found for %s's shell %d among %v", task, shells[task], workers)
		}
		if err := syscall.Kill(w, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed[task] = true
	}
	if got := lines(t, runs); strings.Contains(strings.Join(got, " "), "end") {
		t.Fatalf("a task ended before the kills (the 6 s tries should all be running): %v", got)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	starts, ends := map[string]int{}, map[string]int{}
	for _, l := range lines(t, runs) {
		switch {
		case strings.HasPrefix(l, "overlap"):
			t.Errorf("a retry started while its killed try still ran: %s", l)
		case strings.HasPrefix(l, "start_"):
			starts[strings.Split(l, "_")[1]]++
		case strings.HasPrefix(l, "end_"):
			ends[strings.TrimPrefix(l, "end_")]++
		}
	}
	for i := range n {
		task := fmt.Sprintf("t%d", i)
		wantStarts, wantHistory := 1, "1:success"
		if killed[task] {
			wantStarts, wantHistory = 2, "1:lost 2:success"
		}
		if starts[task] != wantStarts || ends[task] != 1 {
			t.Errorf("%s started %d times and ended %d times; want %d and 1", task, starts[task], ends[task], wantStarts)
		}
		if got := strings.Join(s.attemptStates(t, r, task), " "); got != wantHistory {
			t.Errorf("%s's attempts: %s; want %s", task, got, wantHistory)
		}
	}
}
