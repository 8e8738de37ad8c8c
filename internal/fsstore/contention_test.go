package fsstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

const writers = 8

// together runs f in writers goroutines released at once, and waits for them all.
func together(f func(w int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(w)
		}()
	}
	close(start)
	wg.Wait()
}

// Writers racing on one read version: in each round exactly one conditional update wins,
// every other gets ErrConflict, and the document holds the winner's value. A store that let
// a stale write through would have several winners.
func TestOneConditionalWriterWinsEachRound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ti := b.ti(r, "a", scheduler.TaskQueued)
	must(t, "create", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{ti}))
	for round := range 5 {
		v, err := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
		must(t, "read", err)
		errs := make([]error, writers)
		together(func(w int) {
			_, errs[w] = b.st.UpdateTaskInstanceIf(b.ctx, ti, v.UpdateTime, map[string]any{"attempt_id": fmt.Sprintf("r%d-w%d", round, w)})
		})
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won with the same version", round, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, fsstore.ErrConflict):
				t.Fatalf("round %d: writer %d: err = %v; want ErrConflict", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		now, err := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
		must(t, "read back", err)
		if want := fmt.Sprintf("r%d-w%d", round, winner); now.Rec.AttemptID != want {
			t.Fatalf("round %d: document holds %q; want the winner's %q", round, now.Rec.AttemptID, want)
		}
	}
}

// Writers each incrementing a counter by read, then conditional update, re-reading on
// ErrConflict: every increment lands, and the store counts each lost race it reported.
func TestConcurrentIncrementsLoseNoUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	must(t, "create", b.st.CreateBackfill(b.ctx, &scheduler.Backfill{ID: "bf", DagID: "d"}))
	const each = 5
	var mu sync.Mutex
	var lost int64
	errs := make([]error, writers)
	together(func(w int) {
		for range each {
			for try := 0; ; try++ {
				if try == 200 {
					errs[w] = fmt.Errorf("writer %d: 200 conflicts in a row", w)
					return
				}
				v, err := b.st.GetBackfill(b.ctx, "bf")
				if err != nil {
					errs[w] = err
					return
				}
				_, err = b.st.UpdateBackfillIf(b.ctx, "bf", v.UpdateTime, map[string]any{"created": v.Rec.Created + 1})
				if errors.Is(err, fsstore.ErrConflict) {
					mu.Lock()
					lost++
					mu.Unlock()
					continue
				}
				if err != nil {
					errs[w] = err
					return
				}
				break
			}
		}
	})
	must(t, "writers", errors.Join(errs...))
	v, err := b.st.GetBackfill(b.ctx, "bf")
	must(t, "read", err)
	if v.Rec.Created != writers*each {
		t.Fatalf("counter = %d after %d increments; updates were lost", v.Rec.Created, writers*each)
	}
	conflicts, aborted := b.st.Contention()
	if conflicts+aborted != lost {
		t.Fatalf("Contention() = %d conflicts + %d aborted; the writers saw %d", conflicts, aborted, lost)
	}
	t.Logf("%d increments by %d writers: %d lost races re-read", writers*each, writers, lost)
}

// Concurrent claims of one attempt, each from the queued instance it read: exactly one
// ClaimAttempt succeeds, the rest get ErrConflict, and the attempt is the winner's.
func TestConcurrentClaimsOneWins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ti := b.ti(b.run("d", b.clock, scheduler.RunRunning), "a", scheduler.TaskQueued)
	ti.AttemptID = "att1"
	must(t, "create", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{ti}))
	v, err := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
	must(t, "read", err)
	tr, err := scheduler.Claim(v.Rec, "att1", b.clock)
	must(t, "claim transition", err)
	errs := make([]error, writers)
	together(func(w int) {
		a := b.attempt(ti, "att1")
		a.Worker = fmt.Sprint("w", w)
		_, errs[w] = b.st.ClaimAttempt(b.ctx, v.UpdateTime, tr, a, nil)
	})
	winner := -1
	for w, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both claimed the attempt", winner, w)
		case err == nil:
			winner = w
		case !errors.Is(err, fsstore.ErrConflict):
			t.Fatalf("writer %d: err = %v; want ErrConflict", w, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer claimed the attempt")
	}
	a, err := b.st.GetAttempt(b.ctx, ti.Ref())
	must(t, "read", err)
	if a.Rec.Worker != fmt.Sprint("w", winner) {
		t.Fatalf("attempt's worker = %s; want the winner w%d", a.Rec.Worker, winner)
	}
	if g, _ := b.st.GetTaskInstance(b.ctx, ti.DagID, ti.RunID, ti.TaskID); g.Rec.State != scheduler.TaskRunning || g.Rec.AttemptCount != 1 {
		t.Fatalf("instance is %s with %d attempts; want running with 1", g.Rec.State, g.Rec.AttemptCount)
	}
}

// Concurrent ticks creating the same runs: each run is reported created (a non-zero update
// time) to exactly one of them.
func TestConcurrentCreateRunsAtOnceCreatesEachRunOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs []*scheduler.Run
	for i := range 3 {
		runs = append(runs, b.run("d", b.clock.Add(time.Duration(i)*time.Hour), scheduler.RunQueued))
	}
	times := make([][]time.Time, writers)
	errs := make([]error, writers)
	together(func(w int) {
		mine := make([]*scheduler.Run, len(runs))
		for i, r := range runs {
			c := *r
			c.Conf = fmt.Sprint("w", w)
			mine[i] = &c
		}
		times[w], errs[w] = b.st.CreateRunsAtOnce(b.ctx, mine)
	})
	must(t, "ticks", errors.Join(errs...))
	for i, r := range runs {
		creators := 0
		creator := -1
		for w := range writers {
			if !times[w][i].IsZero() {
				creators++
				creator = w
			}
		}
		if creators != 1 {
			t.Fatalf("run %d reported created to %d ticks; want exactly 1", i, creators)
		}
		v, err := b.st.GetRun(b.ctx, r.DagID, r.RunID)
		must(t, "read", err)
		if v.Rec.Conf != fmt.Sprint("w", creator) || !v.UpdateTime.Equal(times[creator][i]) {
			t.Fatalf("run %d holds %s at %v; tick w%d was told it created it at %v", i, v.Rec.Conf, v.UpdateTime, creator, times[creator][i])
		}
	}
}
