package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// wideIDs are the n middle tasks of a fan-out (or a run's n roots).
func wideIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%02d", i)
	}
	return ids
}

// A ready set is queued in batches: a noop root's 50 downstream tasks (1 → 50 → 1), or a
// run's 50 roots, are read in one batched read and written in one atomic commit, not read
// and written one instance at a time; and each of them still runs exactly once.
func TestReadySetIsQueuedInBatches(t *testing.T) {
	t.Parallel()
	const n = 50
	ids := wideIDs(n)
	fanOut := func(id string) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "id: %s\nowner: owner@example.com\nmax_active_tasks: %d\ntasks:\n  - {id: start, type: noop}\n", id, n)
		for _, w := range ids {
			fmt.Fprintf(&sb, "  - {id: %s, type: test.ok, needs: [start]}\n", w)
		}
		fmt.Fprintf(&sb, "  - {id: join, type: test.ok, needs: [%s]}\n", strings.Join(ids, ", "))
		return sb.String()
	}
	roots := func(id string) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "id: %s\nowner: owner@example.com\nmax_active_tasks: %d\ntasks:\n", id, n)
		for _, w := range ids {
			fmt.Fprintf(&sb, "  - {id: %s, type: test.ok}\n", w)
		}
		return sb.String()
	}
	for _, tc := range []struct {
		name, src, last string
	}{
		{"fanout", fanOut("fanout"), "join"},
		{"roots", roots("roots"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, engine.Config{})
			for _, w := range ids {
				b.runs[w] = &atomic.Int64{} // the test types count executions here
			}
			b.deploy(t, tc.src)
			b.store.TraceOps()
			r := b.trigger(t, tc.name)
			ops := b.store.OpCounts()
			for _, w := range ids {
				if s := b.ti(t, r, w).State; s != scheduler.TaskQueued {
					t.Fatalf("%s is %s; want queued", w, s)
				}
			}
			// The old path cost a read (GetTaskInstance) and a write (ApplyTransition) per task,
			// each its own round trip; the batched one a read of all and a commit of all.
			for k, v := range ops {
				if strings.Contains(k, "decideState via GetTaskInstance") || strings.Contains(k, "apply via ApplyTransition") {
					if v > 1 { // a noop root is still decided on its own
						t.Errorf("%d× %q; want the ready set read and written in batches", v, k)
					}
				}
			}
			if got := ops["read engine.(*Engine).queueReady via GetTaskInstances"]; got != n {
				t.Errorf("batched reads: %d instances; want %d", got, n)
			}
			if got := ops["write engine.(*Engine).queueReady via UpdateTaskInstancesIf"]; got != n {
				t.Errorf("batched writes: %d instances; want %d", got, n)
			}
			if got := b.eng.Stats.TasksQueued.Load(); got != n {
				t.Errorf("%d tasks queued; want %d", got, n)
			}
			for _, w := range ids {
				b.execute(t, r, w)
			}
			if tc.last != "" {
				b.execute(t, r, tc.last)
			}
			if st := b.runState(t, r); st != scheduler.RunSuccess {
				t.Fatalf("run is %s; want success", st)
			}
			for _, w := range append(ids, tc.last) {
				if w == "" {
					continue
				}
				as, err := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, w)
				if err != nil {
					t.Fatal(err)
				}
				if len(as) != 1 || as[0].Rec.State != scheduler.AttemptSuccess || b.runs[w].Load() != 1 {
					t.Errorf("%s has %d attempts and ran %d times; want one attempt, succeeded, run once", w, len(as), b.runs[w].Load())
				}
			}
		})
	}
}

// A member of a ready set that someone else decided first (here marked by hand before its
// upstream finished) is left alone by the batch, as the one-by-one path leaves it, and the
// others are queued and run once each.
func TestReadySetLeavesADecidedTaskAlone(t *testing.T) {
	t.Parallel()
	const n = 10
	ids := wideIDs(n)
	b := setup(t, engine.Config{})
	for _, w := range ids {
		b.runs[w] = &atomic.Int64{}
	}
	var sb strings.Builder
	sb.WriteString("id: wide\nowner: owner@example.com\nmax_active_tasks: 20\ntasks:\n  - {id: a, type: test.ok}\n")
	for _, w := range ids {
		fmt.Fprintf(&sb, "  - {id: %s, type: test.ok, needs: [a]}\n", w)
	}
	b.deploy(t, sb.String())
	r := b.trigger(t, "wide")
	if err := b.eng.MarkTask(b.ctx, r.DagID, r.RunID, ids[0], scheduler.TaskSuccess); err != nil {
		t.Fatal(err)
	}
	b.store.TraceOps()
	b.execute(t, r, "a") // its one-commit finish finds ids[0] moved: the cascade decides the rest
	if got := b.store.OpCounts()["write engine.(*Engine).queueReady via UpdateTaskInstancesIf"]; got != n-1 {
		t.Errorf("batched writes: %d instances; want %d (all but the marked one)", got, n-1)
	}
	if ti := b.ti(t, r, ids[0]); ti.State != scheduler.TaskSuccess || ti.AttemptID != "" {
		t.Fatalf("%s is %s with attempt %q; want the mark (success) kept, never queued", ids[0], ti.State, ti.AttemptID)
	}
	for _, w := range ids[1:] {
		b.execute(t, r, w)
	}
	if st := b.runState(t, r); st != scheduler.RunSuccess {
		t.Fatalf("run is %s; want success", st)
	}
	for _, w := range ids {
		want := int64(1)
		if w == ids[0] {
			want = 0
		}
		if got := b.runs[w].Load(); got != want {
			t.Errorf("%s ran %d times; want %d", w, got, want)
		}
	}
}

// Callers that miss the DAG version cache at once (a worker handed a whole ready set) read
// the version once between them, and all get it.
func TestSpecIsReadOnceByConcurrentMisses(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	d := b.deploy(t, chainDAG("chain"))
	fresh := engine.New(b.store, b.queue, engine.Config{}, b.clock.Now, nil) // an empty cache
	b.store.TraceOps()
	const n = 20
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec, err := fresh.Spec(b.ctx, "chain", d.Source.Hash)
			if err != nil {
				got[i] = err.Error()
				return
			}
			got[i] = spec.ID
		}()
	}
	wg.Wait()
	for i, id := range got {
		if id != "chain" {
			t.Fatalf("caller %d got %q; want the DAG chain", i, id)
		}
	}
	reads := int64(0)
	for k, v := range b.store.OpCounts() {
		if strings.HasSuffix(k, "via GetVersion") {
			reads += v
		}
	}
	if reads != 1 {
		t.Errorf("%d concurrent misses read the version %d times; want once", n, reads)
	}
}
