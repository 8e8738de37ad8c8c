package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// pushDeadline is the push deadline these tests shrink inline attempts to
// (UPDRAFT_INLINE_DEADLINE): a job waited for inline past it would fail.
const pushDeadline = 3 * time.Second

// startDeferStack is a local stack with a fast ticker (it queues the pokes) whose inline
// attempts are cut at pushDeadline; extraEnv reaches inline types (the BigQuery proxy).
func startDeferStack(t *testing.T, extraEnv ...string) *stackBundle {
	t.Helper()
	return startDeferStackProject(t, emutest.Project(t), pushDeadline, extraEnv...)
}

func (s *stackBundle) deploy(t *testing.T, src string) {
	t.Helper()
	d, err := dag.Parse("d.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
}

// openAttempts counts a run's attempts that are running now: an inline attempt running is a
// request held open.
func (s *stackBundle) openAttempts(t *testing.T, r *scheduler.Run) (open, all int) {
	t.Helper()
	as, err := s.stack.Store.RunAttempts(s.ctx, r.DagID, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Rec.State == scheduler.AttemptRunning {
			open++
		}
	}
	return open, len(as)
}

// lines counts the lines of a file (0 when it does not exist).
func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

func TestCloudRunJobLongerThanThePushDeadlineWaitsHoldingNothing(t *testing.T) {
	s := startDeferStack(t)
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	job := fmt.Sprintf("long-%d", time.Now().UnixNano()%1e9)
	// 3 × the push deadline, then done: a wait held inline would be cut off at the deadline.
	testStandIns.CloudRun.SetJob(job, runemu.JobSpec{Command: []string{"/bin/sh", "-c",
		fmt.Sprintf("echo ran >> %s; sleep %d; echo finished", count, int(3*pushDeadline/time.Second))}})
	s.deploy(t, fmt.Sprintf(`id: long_cloudrun
owner: owner@example.com
tasks:
  - id: export
    type: cloudrun.job
    poke_interval: 1s
    with: {job: "projects/p/locations/us-central1/jobs/%s", poll_interval: 500ms}
`, job))
	r, err := s.stack.Engine.Trigger(s.ctx, "long_cloudrun", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "the job to start", func() bool { return countLines(count) == 1 })
	// Pub/Sub delivers the submit again (at least once): it starts no second execution.
	submit := mustTI(t, s, r, "export")
	ref, ok := engine.ParseJobRef(submit.Job)
	if !ok {
		t.Fatalf("no job saved on the task: %q", submit.Job)
	}
	dup, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID,
		TaskID: "export", TryNumber: 1, AttemptID: ref.Tag}, Type: "cloudrun.job"})
	for range 2 {
		if err := s.stack.Queue.PublishTask(s.ctx, dup); err != nil {
			t.Fatal(err)
		}
	}
	// While the execution runs, the task waits between pokes holding no process and no
	// request: sample until such a moment is seen with the execution still running. The
	// samples read through a store of their own, so the stack's counts are its own work.
	probe, err := fsstore.Open(s.ctx, s.stack.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	_, attempts0 := s.openAttempts(t, r)
	var reads0, writes0 = s.stack.Store.Counts()
	start := time.Now()
	idle := 0
	for !strings.Contains(strings.Join(stateList(testStandIns.CloudRun.ExecutionStates(job)), ","), "succeeded") {
		ti, err := probe.GetTaskInstance(s.ctx, r.DagID, r.RunID, "export")
		if err != nil {
			t.Fatal(err)
		}
		as, err := probe.RunAttempts(s.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		for _, a := range as {
			if a.Rec.State == scheduler.AttemptRunning {
				open++
			}
		}
		if ti.Rec.State == scheduler.TaskUpForReschedule && open == 0 && len(s.stack.Dispatcher.Running()) == 0 {
			idle++
		}
		if time.Since(start) > time.Minute {
			t.Fatal("the execution did not finish within a minute")
		}
		time.Sleep(100 * time.Millisecond) // sampling the store, not a timing assumption
	}
	waited := time.Since(start)
	reads1, writes1 := s.stack.Store.Counts()
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s: %v", got, mustTI(t, s, r, "export").Error)
	}
	if idle == 0 {
		t.Fatal("never saw the task waiting in up_for_reschedule with no attempt open while its execution ran")
	}
	if n := countLines(count); n != 1 || testStandIns.CloudRun.ExecutionCount(job) != 1 {
		t.Fatalf("the job ran %d times (%d executions); want once", n, testStandIns.CloudRun.ExecutionCount(job))
	}
	if n := s.stack.Dispatcher.Spawned.Load(); n != 0 {
		t.Fatalf("%d worker processes; cloudrun.job runs inline", n)
	}
	ti := mustTI(t, s, r, "export")
	if ti.TryNumber != 1 {
		t.Fatalf("try %d; pokes use no tries", ti.TryNumber)
	}
	_, attempts := s.openAttempts(t, r)
	a, _ := s.stack.Store.GetAttempt(s.ctx, ti.Ref())
	var x map[string]string
	_ = json.Unmarshal([]byte(a.Rec.XCom), &x)
	if !strings.Contains(x["execution"], job) {
		t.Fatalf("XCom %s; want the execution", a.Rec.XCom)
	}
	// The poke that saw it end copied the execution's log into the task's.
	b, _ := os.ReadFile(tasks.LogPath(s.logDir, scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: "export", TryNumber: 1, AttemptID: ti.AttemptID}))
	if !strings.Contains(string(b), "finished") || !strings.Contains(string(b), "succeeded") {
		t.Fatalf("the last poke's log lacks the execution's output and status:\n%s", b)
	}
	pokes := int64(attempts - attempts0)
	t.Logf("execution of %s: %d attempts (1 submit + pokes), %d samples idle between pokes; while waiting: %d pokes, %d Firestore reads and %d writes by the stack (tick every 200 ms included): %.1f reads and %.1f writes per poke",
		waited.Round(time.Millisecond), attempts, idle, pokes, reads1-reads0, writes1-writes0,
		float64(reads1-reads0)/float64(max(pokes, 1)), float64(writes1-writes0)/float64(max(pokes, 1)))
}

func stateList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestClearDuringACloudRunWaitCancelsTheExecution(t *testing.T) {
	s := startDeferStack(t)
	dir := t.TempDir()
	holdFile := filepath.Join(dir, "hold")
	if err := os.WriteFile(holdFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf("held-%d", time.Now().UnixNano()%1e9)
	// Runs while the hold file exists (at most a minute), so the re-run after the clear ends.
	testStandIns.CloudRun.SetJob(job, runemu.JobSpec{Command: []string{"/bin/sh", "-c",
		fmt.Sprintf("i=0; while [ -e %s ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done", holdFile)}})
	s.deploy(t, fmt.Sprintf(`id: cleared_wait
owner: owner@example.com
tasks:
  - {id: export, type: cloudrun.job, poke_interval: 1s, with: {job: "projects/p/locations/us-central1/jobs/%s"}}
`, job))
	r, err := s.stack.Engine.Trigger(s.ctx, "cleared_wait", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "the task to wait for its execution", func() bool {
		return mustTI(t, s, r, "export").State == scheduler.TaskUpForReschedule
	})
	first := mustTI(t, s, r, "export")
	ref, ok := engine.ParseJobRef(first.Job)
	if !ok || ref.Execution == "" {
		t.Fatalf("no execution saved on the task: %q", first.Job)
	}
	if _, err := s.stack.Engine.ClearTasks(s.ctx, r.DagID, r.RunID, []string{"export"}, false, false); err != nil {
		t.Fatal(err)
	}
	short := ref.Execution[strings.LastIndex(ref.Execution, "/")+1:]
	s.until(t, "the cleared try's execution to end cancelled", func() bool {
		return testStandIns.CloudRun.ExecutionStates(job)[short] == "cancelled"
	})
	s.until(t, "the re-run to start its own execution", func() bool { return testStandIns.CloudRun.ExecutionCount(job) == 2 })
	if err := os.Remove(holdFile); err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s after the clear: %s", got, mustTI(t, s, r, "export").Error)
	}
	if n := testStandIns.CloudRun.ExecutionCount(job); n != 2 {
		t.Fatalf("%d executions; want the cancelled one and the re-run's", n)
	}
}

// bigQueryProxy starts a BigQuery emulator for project and the proxy in front of it.
func bigQueryProxy(t *testing.T, project string, hold time.Duration) *bqemu.Proxy {
	t.Helper()
	ctx := context.Background()
	if _, err := bqemu.EnsureBuilt(ctx); err != nil {
		t.Fatal(err)
	}
	bq, err := bqemu.Start(ctx, project, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bq.Stop() })
	p, err := bqemu.StartProxy(bq.Host, hold)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestBigQueryJobHeldRunningPastThePushDeadlineSucceedsOnce(t *testing.T) {
	project := emutest.Project(t)
	proxy := bigQueryProxy(t, project, 3*pushDeadline)
	s := startDeferStackProject(t, project, pushDeadline, bqemu.EnvVar+"="+proxy.Host)
	s.deploy(t, `id: long_query
owner: owner@example.com
tasks:
  - {id: q, type: bigquery.query, poke_interval: 1s, with: {sql: "SELECT 42 AS answer, 'kr' AS region"}}
  - {id: timed, type: bigquery.query, timeout: 3s, with: {sql: "SELECT 1 AS n"}}
`)
	proxy.SetHold(3 * pushDeadline)
	r, err := s.stack.Engine.Trigger(s.ctx, "long_query", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// timed is held for 3 × the deadline too, past its 3 s timeout.
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed (timed timed out)", got)
	}
	q := mustTI(t, s, r, "q")
	if q.State != scheduler.TaskSuccess {
		t.Fatalf("q: %s %s", q.State, q.Error)
	}
	a, _ := s.stack.Store.GetAttempt(s.ctx, q.Ref())
	var x struct {
		JobID string           `json:"job_id"`
		Rows  []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(a.Rec.XCom), &x); err != nil || len(x.Rows) != 1 || x.Rows[0]["answer"] != float64(42) {
		t.Fatalf("q's XCom %s (%v)", a.Rec.XCom, err)
	}
	if proxy.Inserts(x.JobID) != 1 || proxy.Gets(x.JobID) < 2 {
		t.Fatalf("job %s: %d inserts, %d status reads; want 1 insert and pokes while it ran", x.JobID, proxy.Inserts(x.JobID), proxy.Gets(x.JobID))
	}
	timed := mustTI(t, s, r, "timed")
	ref, _ := engine.ParseJobRef(timed.Job)
	if timed.State != scheduler.TaskFailed || !strings.Contains(timed.Error, "timed out after 3s") || !proxy.Cancelled(ref.Name) {
		t.Fatalf("timed: %s %q, job %s cancelled %v; want failed by its timeout and the job cancelled", timed.State, timed.Error, ref.Name, proxy.Cancelled(ref.Name))
	}
	if n := len(proxy.Jobs()); n != 2 {
		t.Fatalf("%d jobs created; want one per task", n)
	}
}

// startDeferStackProject is startDeferStack on a given project (the BigQuery emulator serves one).
func startDeferStackProject(t *testing.T, project string, deadline time.Duration, extraEnv ...string) *stackBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	logDir := t.TempDir()
	stderr := &localtest.SyncBuffer{}
	st, err := local.Open(ctx, local.Config{
		Project: project, Env: append(set.Env(), testStandIns.Env()...), LogDir: logDir, WorkerCmd: []string{updraftBin, "worker"},
		Log: slog.New(slog.NewTextHandler(stderr, nil)), WorkerStderr: stderr, TickEvery: 200 * time.Millisecond,
		WorkerEnv: append([]string{taskrun.EnvInlineDeadline + "=" + deadline.String()}, extraEnv...),
	})
	if err != nil {
		t.Fatal(err)
	}
	grantDevAdmin(t, ctx, st)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
		if t.Failed() {
			t.Logf("stack stderr:\n%s", stderr.String())
		}
	})
	return &stackBundle{ctx: ctx, stack: st, logDir: logDir, stderr: stderr}
}

func TestFiftyLongWaitsLeaveOtherDAGsInlineTasksRunning(t *testing.T) {
	s := startDeferStack(t)
	dir := t.TempDir()
	holdFile, count := filepath.Join(dir, "hold"), filepath.Join(dir, "runs")
	if err := os.WriteFile(holdFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf("wait50-%d", time.Now().UnixNano()%1e9)
	// Each execution runs until the hold file is gone (at most two minutes).
	testStandIns.CloudRun.SetJob(job, runemu.JobSpec{Command: []string{"/bin/sh", "-c",
		fmt.Sprintf("echo ran >> %s; i=0; while [ -e %s ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done", count, holdFile)}})
	var src strings.Builder
	src.WriteString("id: fifty_waits\nowner: owner@example.com\nmax_active_tasks: 50\ntasks:\n")
	for i := range 50 {
		fmt.Fprintf(&src, "  - {id: w%02d, type: cloudrun.job, poke_interval: 2s, with: {job: \"projects/p/locations/us-central1/jobs/%s\"}}\n", i, job)
	}
	s.deploy(t, src.String())
	s.deploy(t, `id: quick_inline
owner: owner@example.com
tasks:
  - {id: a, type: sensor.time, with: {target_time: "2000-01-01T00:00:00Z"}}
  - {id: b, type: branch, needs: [a], with: {choose: c}}
  - {id: c, type: sensor.time, needs: [b], with: {target_time: "2000-01-01T00:00:00Z"}}
`)
	waits, err := s.stack.Engine.Trigger(s.ctx, "fifty_waits", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "50 executions running", func() bool { return countLines(count) == 50 })
	quick, err := s.stack.Engine.Trigger(s.ctx, "quick_inline", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, quick); got != scheduler.RunSuccess {
		t.Fatalf("quick_inline: %s %v", got, s.states(t, quick))
	}
	if v, err := s.stack.Store.GetRun(s.ctx, quick.DagID, quick.RunID); err == nil && v.Rec.StartedAt != nil && v.Rec.EndedAt != nil {
		t.Logf("quick_inline (3 inline tasks) ran in %s while 50 executions were waited for", v.Rec.EndedAt.Sub(*v.Rec.StartedAt).Round(time.Millisecond))
	}
	pending := 0
	for _, st := range s.states(t, waits) {
		if !st.Finished() {
			pending++
		}
	}
	if pending != 50 {
		t.Fatalf("%d of the 50 waits pending when the other DAG finished; want all (their executions run)", pending)
	}
	if n := s.stack.Dispatcher.Spawned.Load(); n != 0 {
		t.Fatalf("%d worker processes while waiting; want none", n)
	}
	if err := os.Remove(holdFile); err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, waits); got != scheduler.RunSuccess {
		t.Fatalf("fifty_waits: %s", got)
	}
	if n, m := countLines(count), testStandIns.CloudRun.ExecutionCount(job); n != 50 || m != 50 {
		t.Fatalf("%d runs, %d executions; want 50, one per task", n, m)
	}
}

func TestMarkAndDagrunTimeoutCancelTheWaitedExecution(t *testing.T) {
	s := startDeferStack(t)
	job := fmt.Sprintf("marked-%d", time.Now().UnixNano()%1e9)
	testStandIns.CloudRun.SetJob(job, runemu.JobSpec{Command: []string{"/bin/sh", "-c", "sleep 120"}})
	s.deploy(t, fmt.Sprintf(`id: marked_wait
owner: owner@example.com
tasks:
  - {id: export, type: cloudrun.job, poke_interval: 1s, with: {job: "projects/p/locations/us-central1/jobs/%s"}}
`, job))
	s.deploy(t, fmt.Sprintf(`id: slow_run
owner: owner@example.com
dagrun_timeout: 4s
tasks:
  - {id: export, type: cloudrun.job, poke_interval: 1s, with: {job: "projects/p/locations/us-central1/jobs/%s"}}
`, job))
	marked, err := s.stack.Engine.Trigger(s.ctx, "marked_wait", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	slow, err := s.stack.Engine.Trigger(s.ctx, "slow_run", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	execOf := func(r *scheduler.Run) string {
		ref, ok := engine.ParseJobRef(mustTI(t, s, r, "export").Job)
		if !ok || ref.Execution == "" {
			return ""
		}
		return ref.Execution[strings.LastIndex(ref.Execution, "/")+1:]
	}
	s.until(t, "both tasks to wait for their executions", func() bool { return execOf(marked) != "" && execOf(slow) != "" })
	s.until(t, "marked_wait's task to wait between pokes", func() bool {
		return mustTI(t, s, marked, "export").State == scheduler.TaskUpForReschedule
	})
	if err := s.stack.Engine.MarkTask(s.ctx, marked.DagID, marked.RunID, "export", scheduler.TaskFailed); err != nil {
		t.Fatal(err)
	}
	s.until(t, "the marked task's execution to end cancelled", func() bool {
		return testStandIns.CloudRun.ExecutionStates(job)[execOf(marked)] == "cancelled"
	})
	if got := s.waitRun(t, marked); got != scheduler.RunFailed {
		t.Fatalf("marked_wait: %s", got)
	}
	s.until(t, "slow_run's execution to end cancelled by its dagrun_timeout", func() bool {
		return testStandIns.CloudRun.ExecutionStates(job)[execOf(slow)] == "cancelled"
	})
	if got := s.waitRun(t, slow); got != scheduler.RunFailed {
		t.Fatalf("slow_run: %s", got)
	}
	if ti := mustTI(t, s, slow, "export"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "dagrun_timeout") {
		t.Fatalf("slow_run's task: %s %q; want failed by the dagrun_timeout (not skipped: it was waiting for its job)", ti.State, ti.Error)
	}
	if n := testStandIns.CloudRun.ExecutionCount(job); n != 2 {
		t.Fatalf("%d executions; want one per run", n)
	}
}

func TestAFailedPokeLeavesTheJobToTheRetryOrCancelsIt(t *testing.T) {
	project := emutest.Project(t)
	proxy := bigQueryProxy(t, project, time.Hour) // held until released
	s := startDeferStackProject(t, project, pushDeadline, bqemu.EnvVar+"="+proxy.Host)
	s.deploy(t, `id: flaky_pokes
owner: owner@example.com
tasks:
  - {id: retried, type: bigquery.query, retries: 1, retry_delay: 1s, poke_interval: 1s, with: {sql: "SELECT 1 AS n"}}
  - {id: final, type: bigquery.query, poke_interval: 1s, with: {sql: "SELECT 2 AS n"}}
`)
	r, err := s.stack.Engine.Trigger(s.ctx, "flaky_pokes", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	jobOf := func(task string) string {
		ref, _ := engine.ParseJobRef(mustTI(t, s, r, task).Job)
		return ref.Name
	}
	s.until(t, "both jobs submitted", func() bool { return len(proxy.Jobs()) == 2 && jobOf("retried") != "" && jobOf("final") != "" })
	retried, final := jobOf("retried"), jobOf("final")
	// The next status read of each fails: a poke fails, the retry policy applies.
	proxy.FailGets(retried, 1)
	proxy.FailGets(final, 1)
	s.until(t, "final to fail and its job to be cancelled", func() bool {
		return mustTI(t, s, r, "final").State == scheduler.TaskFailed && proxy.Cancelled(final)
	})
	s.until(t, "retried's second try to wait for the first try's job", func() bool {
		ti := mustTI(t, s, r, "retried")
		return ti.TryNumber == 2 && ti.State == scheduler.TaskUpForReschedule
	})
	proxy.Release(retried)
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed (final failed)", got)
	}
	ti := mustTI(t, s, r, "retried")
	if ti.State != scheduler.TaskSuccess || ti.TryNumber != 2 || jobOf("retried") != retried {
		t.Fatalf("retried: %s try %d job %s; want success on try 2 with try 1's job %s", ti.State, ti.TryNumber, jobOf("retried"), retried)
	}
	if n := len(proxy.Jobs()); n != 2 || proxy.Inserts(retried) != 1 {
		t.Fatalf("%d jobs, %d inserts of %s; want the retry to adopt the job, not submit another", n, proxy.Inserts(retried), retried)
	}
}
