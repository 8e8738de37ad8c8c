package fsstore_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// The run lookups the engine decides by: the runs at one logical date, the neighbours of a
// date, the latest success before one (depends_on_past), a range, a run id across DAGs.
func TestRunLookups(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := func(n int) time.Time { return b.clock.Add(time.Duration(n) * time.Hour) }
	for _, x := range []struct {
		at    int
		state scheduler.RunState
	}{{0, scheduler.RunSuccess}, {1, scheduler.RunFailed}, {2, scheduler.RunSuccess}, {3, scheduler.RunFailed}, {4, scheduler.RunRunning}} {
		must(t, "run", b.st.CreateRun(b.ctx, b.run("d", h(x.at), x.state)))
	}
	must(t, "other DAG's run", b.st.CreateRun(b.ctx, b.run("e", h(2), scheduler.RunSuccess)))
	manual := b.run("d", h(2).Add(123*time.Microsecond), scheduler.RunQueued)
	manual.RunID, manual.RunType = scheduler.RunID(scheduler.RunManual, manual.LogicalDate), scheduler.RunManual
	must(t, "manual run", b.st.CreateRun(b.ctx, manual))
	dates := func(vs []fsstore.Versioned[scheduler.Run]) []time.Time {
		var out []time.Time
		for _, v := range vs {
			out = append(out, v.Rec.LogicalDate)
		}
		return out
	}

	at, err := b.st.RunsAt(b.ctx, "d", h(2))
	must(t, "runs at", err)
	if len(at) != 1 || !at[0].Rec.LogicalDate.Equal(h(2)) || at[0].Rec.DagID != "d" {
		t.Fatalf("RunsAt(d, +2h) = %v; want d's one run at that date", dates(at))
	}
	prev, err := b.st.AdjacentRun(b.ctx, "d", h(2), true)
	must(t, "run before", err)
	next, err := b.st.AdjacentRun(b.ctx, "d", h(2).Add(123*time.Microsecond), false)
	must(t, "run after", err)
	if prev == nil || !prev.Rec.LogicalDate.Equal(h(1)) || next == nil || !next.Rec.LogicalDate.Equal(h(3)) {
		t.Fatalf("AdjacentRun around +2h: before %v, after %v; want +1h and +3h", prev, next)
	}
	if none, err := b.st.AdjacentRun(b.ctx, "d", h(0), true); err != nil || none != nil {
		t.Fatalf("AdjacentRun before the first run = %v, %v; want nil", none, err)
	}
	ps, err := b.st.PrevSuccessRun(b.ctx, "d", h(4))
	must(t, "previous success", err)
	if ps == nil || !ps.Rec.LogicalDate.Equal(h(2)) {
		t.Fatalf("PrevSuccessRun(before +4h) = %+v; want the success at +2h (not the failure at +3h)", ps)
	}
	if ps, _ := b.st.PrevSuccessRun(b.ctx, "d", h(2)); ps == nil || !ps.Rec.LogicalDate.Equal(h(0)) {
		t.Fatalf("PrevSuccessRun(before +2h) = %+v; want +0h (strictly before)", ps)
	}
	if ps, _ := b.st.PrevSuccessRun(b.ctx, "d", h(0)); ps != nil {
		t.Fatalf("PrevSuccessRun(before the first) = %+v; want nil", ps)
	}
	between, err := b.st.RunsBetween(b.ctx, "d", h(1), h(3), 10)
	must(t, "between", err)
	if got := dates(between); !slices.EqualFunc(got, []time.Time{h(3), manual.LogicalDate, h(2), h(1)}, time.Time.Equal) {
		t.Fatalf("RunsBetween(+1h, +3h) = %v; want +3h, +2h (manual), +2h, +1h: inclusive, newest first", got)
	}
	list, err := b.st.ListRuns(b.ctx, "d", 2)
	must(t, "list", err)
	if got := dates(list); !slices.EqualFunc(got, []time.Time{h(4), h(3)}, time.Time.Equal) {
		t.Fatalf("ListRuns(limit 2) = %v; want the newest two", got)
	}
	found, err := b.st.FindRuns(b.ctx, scheduler.RunID(scheduler.RunScheduled, h(2)))
	must(t, "find", err)
	if len(found) != 2 {
		t.Fatalf("FindRuns of a run id two DAGs share = %d runs; want 2", len(found))
	}
	active, _ := b.st.CountActiveRuns(b.ctx, "d")
	if active != 2 {
		t.Fatalf("CountActiveRuns = %d; want 2 (the running and the manual queued one)", active)
	}
}

// A task instance's attempts come back oldest first: each claim moves the latest one to the
// instance's past attempts (one still running then was superseded); a run's attempts are
// those of all its instances.
func TestAttemptsComeOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ti := b.ti(r, "a", scheduler.TaskRunning)
	other := b.ti(r, "b", scheduler.TaskRunning)
	must(t, "instances", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{ti, other}))
	for i, id := range []string{"z", "a", "m"} {
		a := b.attempt(ti, id)
		a.StartedAt = b.clock.Add(time.Duration(i) * time.Minute)
		a.XCom, a.Rendered = `{"n": 1}`, `{"sql": "select 1"}`
		if id == "z" {
			a.State, a.EndedAt = scheduler.AttemptFailed, ptr(b.clock)
		}
		b.putAttempt(t, a)
	}
	b.putAttempt(t, b.attempt(other, "other"))
	ids := func(vs []fsstore.Versioned[scheduler.Attempt]) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Rec.ID)
		}
		return out
	}
	as, err := b.st.ListAttempts(b.ctx, ti.DagID, ti.RunID, ti.TaskID)
	must(t, "list", err)
	if got := ids(as); !slices.Equal(got, []string{"z", "a", "m"}) {
		t.Fatalf("ListAttempts = %v; want z a m (by claim)", got)
	}
	if as[0].Rec.State != scheduler.AttemptFailed || as[1].Rec.State != scheduler.AttemptFailed ||
		!strings.Contains(as[1].Rec.Error, "superseded") || as[2].Rec.State != scheduler.AttemptRunning {
		t.Fatalf("states %s %s(%q) %s; want failed, failed (superseded), running", as[0].Rec.State, as[1].Rec.State, as[1].Rec.Error, as[2].Rec.State)
	}
	if as[0].Rec.XCom != "" || as[2].Rec.XCom == "" || as[0].Rec.Rendered == "" || as[2].Rec.Rendered == "" {
		t.Fatalf("XComs %q %q, rendered %q %q; want only the latest attempt's XCom kept, every one's arguments", as[0].Rec.XCom, as[2].Rec.XCom,
			as[0].Rec.Rendered, as[2].Rec.Rendered)
	}
	all, err := b.st.RunAttempts(b.ctx, ti.DagID, ti.RunID)
	must(t, "run attempts", err)
	if len(all) != 4 {
		t.Fatalf("RunAttempts = %v; want the run's 4", ids(all))
	}
	none, err := b.st.ListAttempts(b.ctx, ti.DagID, ti.RunID, "missing")
	if err != nil || len(none) != 0 {
		t.Fatalf("attempts of a missing instance: %v, %v; want none", ids(none), err)
	}
}

// An instance keeps at most MaxPastAttempts earlier attempts, the newest, each small: a
// sensor poking for days with a long error and a large rendered query stays far under
// Firestore's 1 MiB document.
func TestPastAttemptsAreBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ti := &scheduler.TaskInstance{}
	for i := range scheduler.MaxPastAttempts + 5 {
		ti.PastAttempts = fsstore.PastAfterClaim(ti, now)
		ti.Attempt = &scheduler.Attempt{ID: fmt.Sprint(i), State: scheduler.AttemptFailed,
			Error: strings.Repeat("é", 5000), Rendered: strings.Repeat("x", 50_000), XCom: strings.Repeat("1", 200_000)}
	}
	past := fsstore.PastAfterClaim(ti, now)
	if len(past) != scheduler.MaxPastAttempts || past[len(past)-1].ID != fmt.Sprint(scheduler.MaxPastAttempts+4) ||
		past[0].ID != "5" {
		t.Fatalf("%d past attempts, %s..%s; want %d, 5..%d", len(past), past[0].ID, past[len(past)-1].ID,
			scheduler.MaxPastAttempts, scheduler.MaxPastAttempts+4)
	}
	size := 0
	for _, a := range past {
		if !utf8.ValidString(a.Error) {
			t.Fatalf("a past attempt's error was cut inside a character: %q", a.Error[len(a.Error)-8:])
		}
		size += len(a.Error) + len(a.Rendered) + len(a.XCom)
	}
	if size > 300<<10 {
		t.Fatalf("past attempts hold %d bytes of error, rendered and XCom; want them bounded well under 1 MiB", size)
	}
}

// A finished run's grid cells are kept only on the run version they were computed from, and
// are valid only while the run is still finished as they say.
func TestKeepRunCellsIsFenced(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunSuccess)
	r.EndedAt = ptr(b.clock.Add(time.Hour))
	must(t, "run", b.st.CreateRun(b.ctx, r))
	v, err := b.st.GetRun(b.ctx, r.DagID, r.RunID)
	must(t, "read", err)
	cells := []fsstore.CellRec{{TaskID: "a", State: "success", Try: 1}}
	must(t, "keep cells", b.st.KeepRunCells(b.ctx, r, v.UpdateTime, cells))
	mustIs(t, "keep cells on a stale version", b.st.KeepRunCells(b.ctx, r, v.UpdateTime, cells), fsstore.ErrConflict)
	wc, err := b.st.GetRunWithCells(b.ctx, r.DagID, r.RunID)
	must(t, "read with cells", err)
	if !wc.Rec.CellsValid() || len(wc.Rec.Cells) != 1 {
		t.Fatalf("cells of the run as kept: valid %v, %+v", wc.Rec.CellsValid(), wc.Rec.Cells)
	}
	// Cleared and running again: the cells are stale.
	_, err = b.st.UpdateRunIf(b.ctx, r, wc.UpdateTime, map[string]any{"state": string(scheduler.RunRunning), "ended_at": nil})
	must(t, "clear", err)
	wc, _ = b.st.GetRunWithCells(b.ctx, r.DagID, r.RunID)
	if wc.Rec.CellsValid() {
		t.Fatal("cells still valid after the run was cleared")
	}
}

// TrackWrites counts successful writes per document; a refused one is not counted.
func TestTrackWritesCountsWritesThatLanded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.st.TrackWrites()
	must(t, "create", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "d"}))
	mustIs(t, "second create", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "d"}), fsstore.ErrExists)
	v, _ := b.st.GetDAG(b.ctx, "d")
	_, err := b.st.UpdateDAGIf(b.ctx, "d", v.UpdateTime, map[string]any{"owner": "x"})
	must(t, "update", err)
	_, err = b.st.UpdateDAGIf(b.ctx, "d", v.UpdateTime, map[string]any{"owner": "y"})
	mustIs(t, "stale update", err, fsstore.ErrConflict)
	if got := b.st.WritesPerDoc(); len(got) != 1 || got["dags/d"] != 2 {
		t.Fatalf("WritesPerDoc = %v; want dags/d: 2", got)
	}
	if conflicts, _ := b.st.Contention(); conflicts != 1 {
		t.Fatalf("Contention conflicts = %d; want the 1 stale update", conflicts)
	}
}

// A result's rendered arguments over the bound are replaced by a note that still parses as
// JSON, so the instance stays writable whatever a template renders.
func TestLargeRenderedArgumentsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.run("d", b.clock, scheduler.RunRunning)
	ti := b.ti(r, "big", scheduler.TaskRunning)
	must(t, "instance", b.st.CreateTaskInstances(b.ctx, []*scheduler.TaskInstance{ti}))
	ut := b.putAttempt(t, b.attempt(ti, "att1"))
	ref := scheduler.AttemptRef{DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, AttemptID: "att1"}
	huge := `{"sql": "` + strings.Repeat("x", 2<<20) + `"}`
	_, err := b.st.RecordResult(b.ctx, ref, ut, fsstore.AttemptResult{State: scheduler.AttemptSuccess, EndedAt: b.clock, Rendered: huge})
	must(t, "record a result with 2 MiB of rendered arguments", err)
	a, err := b.st.GetAttempt(b.ctx, ref)
	must(t, "read", err)
	var note map[string]string
	if err := json.Unmarshal([]byte(a.Rec.Rendered), &note); err != nil || !strings.Contains(note["_truncated"], "bytes") {
		t.Fatalf("rendered kept = %.80q (%v); want a JSON note of its size", a.Rec.Rendered, err)
	}
}
