package engine_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// chainIDs are the tasks of chainDAG (ids the test types count executions of).
var chainIDs = []string{"a", "b", "c", "d", "e"}

// chainDAG is a chain of test.ok tasks a → b → c → d → e.
func chainDAG(id string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "id: %s\nowner: owner@example.com\ntasks:\n", id)
	for i, task := range chainIDs {
		needs := ""
		if i > 0 {
			needs = ", needs: [" + chainIDs[i-1] + "]"
		}
		fmt.Fprintf(&sb, "  - {id: %s, type: test.ok%s}\n", task, needs)
	}
	return sb.String()
}

// TestChainOperationsPerTask counts the Firestore operations a task on a chain costs, from
// its queueing by its upstream's worker to its own result and its downstream's queueing
// (docs/firestore-ops.md explains each one).
func TestChainOperationsPerTask(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	n := len(chainIDs)
	b.deploy(t, chainDAG("chain"))
	r := b.trigger(t, "chain")
	// Steady state: from the second task on (the first pays for the run's start and the
	// worker's first read of the DAG version).
	b.execute(t, r, chainIDs[0])
	b.store.TraceOps()
	for i := 1; i < n; i++ {
		b.execute(t, r, chainIDs[i])
	}
	if st := b.runState(t, r); st != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", st)
	}
	var reads, writes int64
	var lines []string
	for k, v := range b.store.OpCounts() {
		if strings.Contains(k, "engine_test.") {
			continue // the test's own look-ups
		}
		lines = append(lines, fmt.Sprintf("%5.2f %s", float64(v)/float64(n-1), k))
		if strings.HasPrefix(k, "read") {
			reads += v
		} else {
			writes += v
		}
	}
	sort.Strings(lines)
	perRead, perWrite := float64(reads)/float64(n-1), float64(writes)/float64(n-1)
	t.Logf("per task: %.2f reads, %.2f writes\n%s", perRead, perWrite, strings.Join(lines, "\n"))
	// Per task: the claim's read of its instance and of the run, the finish's read of the
	// downstream instance; the run's end reads its instances once (keepCells), which a chain
	// of 4 counted tasks spreads as 1.25 reads each, with the run's settling. Writes: the
	// claim (the instance's running, with its attempt), the result with the instance's
	// success, the downstream created queued; the leaf's step-by-step finish (2 more) and the
	// run's end (3) over 4 tasks. No aggregation, no follow-up write on the chain.
	if perRead > 5.25 || perWrite > 4 {
		t.Errorf("a task on the chain costs %.2f reads and %.2f writes; want at most 5.25 and 4", perRead, perWrite)
	}
	if n := b.store.OpCounts()["read engine.(*Engine).decideState via CountUpstream"]; n != 0 {
		t.Errorf("a chain counted upstream %d times; its tasks' states are known", n)
	}
}

// Task instances are created by their first transition and hold their attempts: over a
// chain's whole run, from its start, each instance document is written exactly three times
// (created queued, running with its attempt, success with the attempt's result). One created
// `none` at the run's start and queued later, or an attempt kept in a document of its own,
// would show more.
func TestChainInstancesAreWrittenThreeTimes(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chainDAG("chain"))
	b.store.TrackWrites()
	b.store.TraceOps()
	r := b.trigger(t, "chain")
	var created []string
	for k := range b.store.WritesPerDoc() {
		if strings.HasPrefix(k, "task_instances/") {
			created = append(created, k)
		}
	}
	if len(created) != 1 || created[0] != "task_instances/"+scheduler.TaskKey(r.DagID, r.RunID, "a") {
		t.Fatalf("the run's start wrote instances %v; want only its root's (a), queued", created)
	}
	for _, id := range chainIDs {
		b.execute(t, r, id)
	}
	if st := b.runState(t, r); st != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", st)
	}
	per := b.store.WritesPerDoc()
	for i, id := range chainIDs {
		// The leaf takes the step-by-step path (it may finish the run): its result with its
		// final state and a follow-up deadline, then the deadline cleared.
		want, what := 3, "created queued, running (the claim), success with the result"
		if i == len(chainIDs)-1 {
			want, what = 4, "created queued, running, success with the result and a follow-up deadline, the deadline cleared"
		}
		if n := per["task_instances/"+scheduler.TaskKey(r.DagID, r.RunID, id)]; n != want {
			t.Errorf("instance %s written %d times; want %d (%s)", id, n, want, what)
		}
	}
	for k, n := range per {
		if !strings.HasPrefix(k, "task_instances/") && !strings.HasPrefix(k, "runs/") && !strings.HasPrefix(k, "dags/") {
			t.Errorf("%s written %d times; a chain writes its run, its DAG's recent runs and its instances only", k, n)
		}
	}
	for k := range b.store.OpCounts() {
		if strings.Contains(k, "CreateTaskInstances") {
			t.Errorf("%q: a chain's instances are created by their queueing, not at the run's start", k)
		}
	}
}

// TestChainTransitions records the transitions a chain's run applies: each task queued by its
// upstream's result (in the same commit), claimed, and finished, in that order.
func TestChainTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chainDAG("chain"))
	var mu sync.Mutex
	var got []string
	b.eng.RecordTransitions(func(a engine.Applied) {
		mu.Lock()
		got = append(got, a.Transition.String())
		mu.Unlock()
	})
	r := b.trigger(t, "chain")
	for _, id := range chainIDs {
		b.execute(t, r, id)
	}
	want := []string{"a: none → queued"}
	for i, id := range chainIDs {
		want = append(want, id+": queued → running", id+": running → success")
		if i+1 < len(chainIDs) {
			want = append(want, chainIDs[i+1]+": none → queued")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transitions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A late worker whose attempt the tick declared lost must not queue the downstream task in
// the one-commit finish: the attempt's precondition fails, nothing of the commit is written,
// and the step-by-step path finds the result stale.
func TestLateResultQueuesNoDownstream(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: time.Minute})
	b.deploy(t, chainDAG("chain"))
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "slow", ExecutorRef: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(2 * time.Minute)
	if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: lost %d (%v); want 1", rep.LostWorkers, err)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("late result: %v; want ErrStale", err)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskFailed {
		t.Fatalf("a is %s; want failed (a lost worker, no retries)", s)
	}
	if ti := b.ti(t, r, "b"); ti.State != scheduler.TaskUpstreamFailed || ti.AttemptID != "" {
		t.Fatalf("b is %s with attempt %q after a's late result; want upstream_failed, never queued", ti.State, ti.AttemptID)
	}
}

// A downstream task someone else already decided (here marked by hand) makes the one-commit
// finish fall back to the step-by-step path, which leaves the mark alone and still advances.
func TestFinishFallsBackWhenTheDownstreamMoved(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, chainDAG("chain"))
	r := b.trigger(t, "chain")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, "b", scheduler.TaskSuccess); err != nil {
		t.Fatal(err)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatal(err)
	}
	if s := b.ti(t, r, "b").State; s != scheduler.TaskSuccess {
		t.Fatalf("b is %s; want the mark (success) kept", s)
	}
	if s := b.ti(t, r, "c").State; s != scheduler.TaskQueued {
		t.Fatalf("c is %s; want queued (its upstream b was marked success)", s)
	}
	a, err := b.store.GetAttempt(b.ctx, ref)
	if err != nil || a.Rec.State != scheduler.AttemptSuccess || a.Rec.TickDueAt != nil {
		t.Fatalf("attempt: %+v, %v; want success with its follow-up done", a, err)
	}
}
