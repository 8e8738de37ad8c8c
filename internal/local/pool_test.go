package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/scheduler"
)

// The reliability tests of the one-attempt workers, on warm workers: the guarantees hold per
// attempt.

func TestPoolTaskLongerThanTheLeaseSucceedsOnce(t *testing.T) {
	testTaskLongerThanTheLease(t, startStackWith(t, 2*time.Second, nil, 2))
}

func TestPoolKilledWorkerTakesItsProcessTreeBeforeTheRetry(t *testing.T) {
	testKilledWorker(t, startStackWith(t, 2*time.Second, nil, 1))
}

func TestPoolTimeoutKillsSetsidGrandchild(t *testing.T) {
	testTimeoutKillsSetsidGrandchild(t, startStackWith(t, time.Minute, nil, 1))
}

// A chain of shell tasks runs on one warm worker, each attempt with its own executor
// reference, and gives the same results as with a process per attempt.
func TestPoolRunsAChainOnOneWarmWorker(t *testing.T) {
	const n = 4
	src := "id: chain\nowner: owner@example.com\ntasks:\n"
	for i := 0; i < n; i++ {
		src += fmt.Sprintf("  - {id: t%d, type: shell, with: {command: 'echo \"{\\\"i\\\": %d}\"'}%s}\n", i, i, map[bool]string{true: "", false: fmt.Sprintf(", needs: [t%d]", i-1)}[i == 0])
	}
	results := map[int]map[string]string{}
	for _, warm := range []int{0, 1} {
		s := startStackWith(t, 10*time.Second, nil, warm)
		r := s.deployAndTrigger(t, "chain", src)
		if got := s.waitRun(t, r); got != scheduler.RunSuccess {
			t.Fatalf("warm %d: run %s", warm, got)
		}
		results[warm] = map[string]string{}
		workers := map[string]bool{}
		for i := 0; i < n; i++ {
			as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, fmt.Sprintf("t%d", i))
			if err != nil || len(as) != 1 {
				t.Fatalf("warm %d: t%d: %d attempts, %v", warm, i, len(as), err)
			}
			a := as[0].Rec
			results[warm][a.TaskID] = string(a.State) + " " + a.XCom
			base, attempt, pooled := strings.Cut(a.ExecutorRef, "#")
			if pooled != (warm > 0) || (pooled && attempt != a.ID) {
				t.Errorf("warm %d: executor ref %q of attempt %s", warm, a.ExecutorRef, a.ID)
			}
			workers[base] = true
		}
		d := s.stack.Dispatcher
		if warm > 0 {
			if len(workers) != 1 || d.Pool.Started.Load() != 1 || d.Pooled.Load() != n || d.Spawned.Load() != 0 {
				t.Errorf("warm workers: %d refs, %d started, %d pooled, %d spawned; want 1, 1, %d, 0", len(workers), d.Pool.Started.Load(), d.Pooled.Load(), d.Spawned.Load(), n)
			}
			// Each downstream task the warm worker's fast-follow queued was announced to the
			// pool, and the dispatcher's pulls on those kicks (and on the trigger's) took
			// messages before the emulator's 50 ms streaming pull did.
			if k := d.Pool.Kicks.Load(); k != n-1 {
				t.Errorf("kicks from the warm worker: %d; want %d, one per downstream task it queued", k, n-1)
			}
			if d.Kicked.Load() == 0 {
				t.Error("no task message was taken by a pull on a kick")
			}
		} else if len(workers) != n || d.Spawned.Load() != n {
			t.Errorf("process per attempt: %d workers, %d spawned; want %d", len(workers), d.Spawned.Load(), n)
		}
	}
	if fmt.Sprint(results[0]) != fmt.Sprint(results[1]) {
		t.Errorf("results differ: per process %v, warm %v", results[0], results[1])
	}
}

// kill -9 of a warm worker running two attempts: both attempts' trees die (their setsid
// grandchildren included) before the verdict, each attempt is found lost, and each is retried
// and succeeds.
func TestPoolKilledWarmWorkerLosesEachOfItsAttempts(t *testing.T) {
	s := startStackWith(t, 2*time.Second, nil, 1)
	dir := t.TempDir()
	runs, pids := filepath.Join(dir, "runs"), filepath.Join(dir, "pids")
	cmd := fmt.Sprintf(`
        echo "start $UPDRAFT_TASK_ID $UPDRAFT_TRY_NUMBER" >> %[1]s
        if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then
          echo $$ >> %[2]s
          setsid sleep 60 &
          echo $! >> %[2]s
          sleep 60
        fi`, runs, pids)
	indent := strings.ReplaceAll(cmd, "\n", "\n  ")
	r := s.deployAndTrigger(t, "twokilled", fmt.Sprintf(`id: twokilled
owner: owner@example.com
tasks:
  - id: a
    type: shell
    retries: 1
    retry_delay: 0s
    with:
      command: |%[1]s
  - id: b
    type: shell
    retries: 1
    retry_delay: 0s
    with:
      command: |%[1]s
`, indent))
	s.until(t, "both first tries to record their pids", func() bool { return len(lines(t, pids)) == 4 })
	workers := s.busyWorkers()
	if len(workers) != 1 {
		t.Fatalf("busy warm workers %v; want 1 running both attempts", workers)
	}
	// Each attempt's tree runs under the dedicated supervisor built next to the worker, not
	// a re-execution of the worker.
	sups := proctree.Supervisors(proctree.Ref(workers[0]))
	if len(sups) != 2 {
		t.Fatalf("supervisors of the warm worker: %v; want one per attempt", sups)
	}
	for _, sp := range sups {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sp)); filepath.Base(exe) != "updraft-supervise" {
			t.Errorf("supervisor %d runs %q; want updraft-supervise", sp, exe)
		}
	}
	if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lost := 0
	s.until(t, "the tick to declare both attempts lost", func() bool { lost += s.stack.TickOnce(s.ctx).LostWorkers; return lost == 2 })
	for _, p := range lines(t, pids) {
		var pid int
		fmt.Sscan(p, &pid)
		if proctree.Alive(pid) {
			t.Errorf("process %d of the killed warm worker's attempts is alive after the lost-worker verdicts", pid)
		}
	}
	s.ticking(t)
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success on the retries", got)
	}
	got := strings.Join(lines(t, runs), " ")
	for _, want := range []string{"start_a_1", "start_a_2", "start_b_1", "start_b_2"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("runs %q; want %s once", got, want)
		}
	}
}

// The executor's Cancel of one attempt of a warm worker (as the engine asks when a run's
// dagrun_timeout passes) stops that attempt alone: its shell dies through the pool (long
// before a lease renewal, with a 5-minute lease, could notice anything), while the other
// attempt on the same warm worker runs on.
func TestPoolCancelStopsOneAttemptOfAWarmWorker(t *testing.T) {
	s := startStackWith(t, 5*time.Minute, nil, 1)
	pids := filepath.Join(t.TempDir(), "pids")
	r := s.deployAndTrigger(t, "cancelone", fmt.Sprintf(`id: cancelone
owner: owner@example.com
tasks:
  - {id: a, type: shell, with: {command: 'echo "a $$" >> %[1]s; sleep 120'}}
  - {id: b, type: shell, with: {command: 'echo "b $$" >> %[1]s; sleep 120'}}
`, pids))
	shells := map[string]int{}
	s.until(t, "both tasks to start", func() bool {
		for _, l := range strings.Split(strings.TrimSpace(strings.Join(lines(t, pids), "\n")), "\n") {
			var id string
			var pid int
			if _, err := fmt.Sscanf(strings.ReplaceAll(l, "_", " "), "%s %d", &id, &pid); err == nil {
				shells[id] = pid
			}
		}
		return len(shells) == 2
	})
	workers := s.busyWorkers()
	if len(workers) != 1 {
		t.Fatalf("busy warm workers %v; want 1 running both", workers)
	}
	as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, "a")
	if err != nil || len(as) != 1 || !strings.Contains(as[0].Rec.ExecutorRef, "#"+as[0].Rec.ID) {
		t.Fatalf("a's attempts %v, %v; want one, with a pooled executor ref", as, err)
	}
	if err := (local.Processes{Pool: s.stack.Dispatcher.Pool}).Cancel(s.ctx, as[0].Rec.ExecutorRef); err != nil {
		t.Fatal(err)
	}
	s.until(t, "a's shell to die", func() bool { return !proctree.Alive(shells["a"]) })
	if !proctree.Alive(shells["b"]) {
		t.Error("b's shell died with a's cancel")
	}
	if got := s.busyWorkers(); len(got) != 1 || got[0] != workers[0] {
		t.Errorf("busy warm workers %v after the cancel; want the same one, %v, still running b", got, workers)
	}
}

// Rebuilding the worker binary takes effect at the next attempt, as docs/tasks/go.md says
// ("the next attempt uses the new binary, no restart needed"): a warm worker started from
// the old binary takes no new attempt; a new one from the rebuilt binary does.
func TestPoolStartsARebuiltWorkerBinaryForTheNextAttempt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "my-worker")
	install := func(mtime time.Time) { // as `go build -o`: a new file renamed into place
		t.Helper()
		b, err := os.ReadFile(updraftBin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin+".tmp", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(bin+".tmp", mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".tmp", bin); err != nil {
			t.Fatal(err)
		}
	}
	install(time.Now().Add(-time.Hour))
	s := startStackWith(t, 10*time.Second, nil, 1, bin, "worker")
	const src = "id: once\nowner: owner@example.com\ntasks:\n  - {id: t, type: shell, with: {command: 'echo hi'}}\n"
	workerOf := func(r *scheduler.Run) string {
		t.Helper()
		if got := s.waitRun(t, r); got != scheduler.RunSuccess {
			t.Fatalf("run %s: %s", r.RunID, got)
		}
		as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, "t")
		if err != nil || len(as) != 1 {
			t.Fatalf("%d attempts, %v", len(as), err)
		}
		base, _, _ := strings.Cut(as[0].Rec.ExecutorRef, "#")
		return base
	}
	first := workerOf(s.deployAndTrigger(t, "once", src))
	same := workerOf(s.deployAndTrigger(t, "once", src))
	if same != first {
		t.Fatalf("the same binary: second attempt on %s, first on %s; want the same warm worker", same, first)
	}
	install(time.Now())
	rebuilt := workerOf(s.deployAndTrigger(t, "once", src))
	if rebuilt == first || s.stack.Dispatcher.Pool.Started.Load() != 2 {
		t.Fatalf("after a rebuild: attempt on %s (the old worker is %s), %d workers started; want a new worker, 2 started",
			rebuilt, first, s.stack.Dispatcher.Pool.Started.Load())
	}
}
