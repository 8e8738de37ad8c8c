package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/scheduler"
)

// deploySrc deploys one DAG's YAML on the stack and triggers a run of it.
func (s *stackBundle) deployAndTrigger(t *testing.T, id, src string) *scheduler.Run {
	t.Helper()
	d, err := dag.Parse(id+".yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := s.stack.Engine.Trigger(s.ctx, id, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ticking runs the tick every 200 ms until the test ends, as `updraft dev` would (with a
// faster period), so lost workers are looked for all along.
func (s *stackBundle) ticking(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				s.stack.TickOnce(s.ctx)
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// A task three and a half times as long as the lease (and longer than every per-call
// deadline, which the lease scales) runs once and its result is recorded, while the tick
// keeps looking for lost workers.
func TestTaskLongerThanTheLeaseSucceedsOnce(t *testing.T) {
	testTaskLongerThanTheLease(t, startStack(t, 2*time.Second))
}

func testTaskLongerThanTheLease(t *testing.T, s *stackBundle) {
	s.ticking(t)
	runs := filepath.Join(t.TempDir(), "runs")
	r := s.deployAndTrigger(t, "long", fmt.Sprintf(`id: long
owner: owner@example.com
tasks:
  - id: slow
    type: shell
    retries: 2
    retry_delay: 0s
    with: {command: 'echo ran >> %s; sleep 7; echo "{\"slept\": 7}"'}
`, runs))
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	if got := lines(t, runs); len(got) != 1 {
		t.Fatalf("the command ran %d times; want once", len(got))
	}
	as, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, "slow")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Rec.State != scheduler.AttemptSuccess || as[0].Rec.XCom != `{"slept": 7}` {
		for _, a := range as {
			t.Logf("attempt %s: %s %q", a.Rec.ID, a.Rec.State, a.Rec.Error)
		}
		t.Fatalf("%d attempts; want one, succeeded, with its XCom recorded", len(as))
	}
}

// kill -9 of a worker mid-task: before the retry starts, none of the first try's processes
// is alive (the setsid grandchild included); the command ran twice, without overlap.
func TestKilledWorkerTakesItsProcessTreeBeforeTheRetry(t *testing.T) {
	testKilledWorker(t, startStack(t, 2*time.Second))
}

// busyWorkers are the worker processes running an attempt: one-attempt workers, or warm
// workers with an attempt.
func (s *stackBundle) busyWorkers() []int {
	if p := s.stack.Dispatcher.Pool; p != nil {
		return p.Busy()
	}
	return s.stack.Dispatcher.Running()
}

func testKilledWorker(t *testing.T, s *stackBundle) {
	dir := t.TempDir()
	runs, pids := filepath.Join(dir, "runs"), filepath.Join(dir, "pids")
	// Try 1 records its shell's and its setsid grandchild's pids and sleeps; try 2 records
	// any of them still alive (not a zombie) when it starts.
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
        if [ "$UPDRAFT_TRY_NUMBER" = 1 ]; then
          echo $$ >> %[2]s
          setsid sleep 60 &
          echo $! >> %[2]s
          sleep 60
        fi
        for p in $(cat %[2]s); do
          if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo "overlap $p" >> %[1]s; fi
        done
`, runs, pids))
	s.until(t, "the first try to record its pids", func() bool { return len(lines(t, pids)) == 2 })
	workers := s.busyWorkers()
	if len(workers) != 1 {
		t.Fatalf("running workers %v; want 1", workers)
	}
	if err := syscall.Kill(workers[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.until(t, "the tick to declare the worker lost", func() bool { return s.stack.TickOnce(s.ctx).LostWorkers == 1 })
	// The verdict needs the executor to find nothing of the worker left.
	for _, p := range lines(t, pids) {
		var pid int
		fmt.Sscan(p, &pid)
		if proctree.Alive(pid) {
			t.Errorf("process %d of the killed worker's attempt is alive after the lost-worker verdict", pid)
		}
	}
	s.ticking(t)
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success on the retry", got)
	}
	if got := lines(t, runs); len(got) != 2 || got[0] != "start_1" || got[1] != "start_2" {
		t.Fatalf("runs %v; want try 1 then try 2, no overlap", got)
	}
}

// A timeout ends the attempt and its whole tree, a setsid grandchild holding the output
// pipe included.
func TestTimeoutKillsSetsidGrandchild(t *testing.T) {
	testTimeoutKillsSetsidGrandchild(t, startStack(t, time.Minute))
}

func testTimeoutKillsSetsidGrandchild(t *testing.T, s *stackBundle) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	r := s.deployAndTrigger(t, "escapes", fmt.Sprintf(`id: escapes
owner: owner@example.com
tasks:
  - id: hangs
    type: shell
    timeout: 2s
    with: {command: "setsid sleep 600 & echo $! > %s; wait"}
`, pidFile))
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed on the timeout", got)
	}
	ti, _ := s.stack.Store.GetTaskInstance(s.ctx, r.DagID, r.RunID, "hangs")
	if !strings.Contains(ti.Rec.Error, "timed out after 2s") {
		t.Fatalf("error %q; want the timeout", ti.Rec.Error)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if proctree.Alive(pid) {
		t.Fatalf("the setsid grandchild %d outlived its task's timeout", pid)
	}
}
