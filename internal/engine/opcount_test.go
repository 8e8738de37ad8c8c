package engine_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

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
	// attempt's create and result, the instance's running, result and queued transitions,
	// plus the run's end. No aggregation, no follow-up write.
	if perRead > 5.25 || perWrite > 5.75 {
		t.Errorf("a task on the chain costs %.2f reads and %.2f writes; want at most 5.25 and 5.75", perRead, perWrite)
	}
	if n := b.store.OpCounts()["read engine.(*Engine).decideState via CountUpstream"]; n != 0 {
		t.Errorf("a chain counted upstream %d times; its tasks' states are known", n)
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
