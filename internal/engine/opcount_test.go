package engine_test

import (
	"fmt"
	"sort"
	"strings"
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
	t.Logf("per task: %.2f reads, %.2f writes\n%s", float64(reads)/float64(n-1), float64(writes)/float64(n-1), strings.Join(lines, "\n"))
}
