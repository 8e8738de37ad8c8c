package fsstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// dueKind is one of the queries the tick (or the alerts' tick) reads by a due time: how to
// store a document due at a time (nil: not due at all) and how to read those due by now.
type dueKind struct {
	name string
	put  func(id string, due *time.Time) error
	due  func(now time.Time, limit int) ([]string, error)
}

func dueKinds(b *bundle) []dueKind {
	ctx, st := b.ctx, b.st
	r := b.run("d", b.clock, scheduler.RunRunning)
	runIDs := func(vs []fsstore.Versioned[scheduler.Run], err error) ([]string, error) {
		var ids []string
		for _, v := range vs {
			ids = append(ids, v.Rec.DagID)
		}
		return ids, err
	}
	return []dueKind{
		{"DueDAGs", func(id string, due *time.Time) error {
			return st.CreateDAG(ctx, &scheduler.DAGRecord{DagID: id, Active: true, NextDueAt: due})
		}, func(now time.Time, limit int) ([]string, error) {
			vs, err := st.DueDAGs(ctx, now, limit)
			var ids []string
			for _, v := range vs {
				ids = append(ids, v.Rec.DagID)
			}
			return ids, err
		}},
		{"DueRuns", func(id string, due *time.Time) error {
			rr := b.run(id, b.clock, scheduler.RunQueued)
			rr.TickDueAt = due
			return st.CreateRun(ctx, rr)
		}, func(now time.Time, limit int) ([]string, error) { return runIDs(st.DueRuns(ctx, now, limit)) }},
		{"SLADueRuns", func(id string, due *time.Time) error {
			rr := b.run(id, b.clock.Add(24*time.Hour), scheduler.RunRunning) // not DueRuns' run
			rr.SLADueAt = due
			return st.CreateRun(ctx, rr)
		}, func(now time.Time, limit int) ([]string, error) { return runIDs(st.SLADueRuns(ctx, now, limit)) }},
		{"DueTaskInstances", func(id string, due *time.Time) error {
			ti := b.ti(r, id, scheduler.TaskUpForRetry)
			ti.TickDueAt = due
			return st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{ti})
		}, func(now time.Time, limit int) ([]string, error) {
			vs, err := st.DueTaskInstances(ctx, now, limit)
			var ids []string
			for _, v := range vs {
				ids = append(ids, v.Rec.TaskID)
			}
			return ids, err
		}},
		{"DueAttempts", func(id string, due *time.Time) error {
			// The latest attempt of an instance of another run, due at its lease.
			ti := b.ti(b.run("att", b.clock, scheduler.RunRunning), id, scheduler.TaskRunning)
			if err := st.CreateTaskInstances(ctx, []*scheduler.TaskInstance{ti}); err != nil {
				return err
			}
			v, err := st.GetTaskInstance(ctx, ti.DagID, ti.RunID, ti.TaskID)
			if err != nil {
				return err
			}
			a := b.attempt(ti, id)
			ut, err := st.ClaimAttempt(ctx, v.UpdateTime, scheduler.Transition{TaskID: id, From: ti.State, To: ti.State}, a, nil)
			if err != nil {
				return err
			}
			_, err = st.SetFollowUp(ctx, scheduler.AttemptRef{DagID: ti.DagID, RunID: ti.RunID, TaskID: id, AttemptID: id}, ut, due)
			return err
		}, func(now time.Time, limit int) ([]string, error) {
			vs, err := st.DueAttempts(ctx, now, limit)
			var ids []string
			for _, v := range vs {
				ids = append(ids, v.Rec.ID)
			}
			return ids, err
		}},
		{"DueBackfills", func(id string, due *time.Time) error {
			return st.CreateBackfill(ctx, &scheduler.Backfill{ID: id, DagID: "d", State: scheduler.BackfillRunning, TickDueAt: due})
		}, func(now time.Time, limit int) ([]string, error) {
			vs, err := st.DueBackfills(ctx, now, limit)
			var ids []string
			for _, v := range vs {
				ids = append(ids, v.Rec.ID)
			}
			return ids, err
		}},
	}
}

// Every due query reads the documents due at or before now, oldest first, at most limit: a
// document due exactly at now is read, one due a microsecond later (Firestore's precision)
// is not, and one with no due time (a paused or inactive DAG, a run or instance that needs
// no tick) is never read.
func TestDueQueriesReadWhatIsDueOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.clock
	docs := []struct {
		id  string
		due *time.Time
	}{
		{"p-at-now", ptr(now)},
		{"p-after", ptr(now.Add(time.Microsecond))},
		{"p-none", nil},
		{"p-2h-ago", ptr(now.Add(-2 * time.Hour))},
		{"p-1h-ago", ptr(now.Add(-time.Hour))},
		{"p-tomorrow", ptr(now.Add(24 * time.Hour))},
	}
	for _, k := range dueKinds(b) {
		t.Run(k.name, func(t *testing.T) {
			for _, d := range docs {
				must(t, "put "+d.id, k.put(d.id, d.due))
			}
			for _, c := range []struct {
				now   time.Time
				limit int
				want  []string
			}{
				{now, 10, []string{"p-2h-ago", "p-1h-ago", "p-at-now"}},
				{now, 2, []string{"p-2h-ago", "p-1h-ago"}},
				{now.Add(time.Microsecond), 10, []string{"p-2h-ago", "p-1h-ago", "p-at-now", "p-after"}},
				{now.Add(-time.Microsecond), 10, []string{"p-2h-ago", "p-1h-ago"}},
				{now.Add(-3 * time.Hour), 10, nil},
			} {
				got, err := k.due(c.now, c.limit)
				must(t, "due", err)
				if !slices.Equal(got, c.want) {
					t.Errorf("%s(now%+v, limit %d) = %v; want %v", k.name, c.now.Sub(now), c.limit, got, c.want)
				}
			}
		})
	}
}

// Paused and pruned DAGs carry no next_due_at, so the tick never reads them however
// overdue they were when they stopped.
func TestDueDAGsLeavesOutPausedAndInactiveDAGs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	must(t, "due", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "due", Active: true, NextDueAt: ptr(b.clock.Add(-time.Hour))}))
	must(t, "paused", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "paused", Active: true, Paused: true, NextEnd: ptr(b.clock.Add(-time.Hour))}))
	must(t, "pruned", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "pruned", Active: false, NextEnd: ptr(b.clock.Add(-time.Hour))}))
	must(t, "unscheduled", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "unscheduled", Active: true}))
	// A DAG paused after it was due: the pause clears next_due_at.
	must(t, "later paused", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "later-paused", Active: true, NextDueAt: ptr(b.clock.Add(-2 * time.Hour))}))
	v, err := b.st.GetDAG(b.ctx, "later-paused")
	must(t, "read", err)
	_, err = b.st.UpdateDAGIf(b.ctx, "later-paused", v.UpdateTime, map[string]any{"paused": true, "next_due_at": nil})
	must(t, "pause", err)

	vs, err := b.st.DueDAGs(b.ctx, b.clock, 10)
	must(t, "due dags", err)
	if len(vs) != 1 || vs[0].Rec.DagID != "due" {
		t.Fatalf("DueDAGs = %v; want only the active, unpaused, due DAG", dagIDs(vs))
	}
	all, err := b.st.ListDAGs(b.ctx)
	must(t, "list", err)
	if got := dagIDs(all); !slices.Equal(got, []string{"due", "later-paused", "paused", "pruned", "unscheduled"}) {
		t.Fatalf("ListDAGs = %v; want every DAG by id", got)
	}
}

func dagIDs(vs []fsstore.Versioned[scheduler.DAGRecord]) []string {
	var ids []string
	for _, v := range vs {
		ids = append(ids, v.Rec.DagID)
	}
	return ids
}

// DueDAGsAfter pages through every due DAG once, in next_due_at then id order, even when
// many DAGs are due at the same time and a page ends among them.
func TestDueDAGsAfterPagesThroughTiesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	same := b.clock.Add(-time.Hour)
	var want []string
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		must(t, "dag "+id, b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: id, Active: true, NextDueAt: ptr(same)}))
	}
	must(t, "oldest", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "z-oldest", Active: true, NextDueAt: ptr(same.Add(-time.Minute))}))
	must(t, "newest", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "0-newest", Active: true, NextDueAt: ptr(b.clock)}))
	must(t, "not due", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "later", Active: true, NextDueAt: ptr(b.clock.Add(time.Second))}))
	want = []string{"z-oldest", "a", "b", "c", "d", "e", "0-newest"}

	var got []string
	var last *fsstore.Versioned[scheduler.DAGRecord]
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("more than 10 pages of 2; read so far %v", got)
		}
		page, err := b.st.DueDAGsAfter(b.ctx, b.clock, 2, last)
		must(t, "page", err)
		got = append(got, dagIDs(page)...)
		if len(page) < 2 {
			break
		}
		last = &page[len(page)-1]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages read %v; want %v", got, want)
	}
}

// FailedTaskInstances reads the instances that ended failed in [from, to), oldest first.
func TestFailedTaskInstancesReadsAHalfOpenRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	from, to := b.clock, b.clock.Add(time.Hour)
	r := b.run("d", b.clock, scheduler.RunFailed)
	var tis []*scheduler.TaskInstance
	for _, x := range []struct {
		id    string
		state scheduler.TaskState
		ended time.Time
	}{
		{"at-to", scheduler.TaskFailed, to},
		{"before-from", scheduler.TaskFailed, from.Add(-time.Microsecond)},
		{"last", scheduler.TaskFailed, to.Add(-time.Microsecond)},
		{"at-from", scheduler.TaskFailed, from},
		{"ok", scheduler.TaskSuccess, from.Add(time.Minute)},
		{"mid", scheduler.TaskFailed, from.Add(time.Minute)},
	} {
		ti := b.ti(r, x.id, x.state)
		ti.EndedAt = ptr(x.ended)
		tis = append(tis, ti)
	}
	must(t, "create", b.st.CreateTaskInstances(b.ctx, tis))
	for _, c := range []struct {
		limit int
		want  []string
	}{{10, []string{"at-from", "mid", "last"}}, {2, []string{"at-from", "mid"}}} {
		vs, err := b.st.FailedTaskInstances(b.ctx, from, to, c.limit)
		must(t, "failed", err)
		var got []string
		for _, v := range vs {
			got = append(got, v.Rec.TaskID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("FailedTaskInstances(limit %d) = %v; want %v", c.limit, got, c.want)
		}
	}
}

// RunsBefore pages through the runs older than a date, each once, in logical-date then key
// order, even when runs of several DAGs share a logical date.
func TestRunsBeforePagesThroughEachRunOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := b.clock
	var want []string
	for i := range 3 {
		at := before.Add(-time.Duration(3-i) * time.Hour)
		for _, dag := range []string{"a", "b"} {
			r := b.run(dag, at, scheduler.RunSuccess)
			must(t, "run", b.st.CreateRun(b.ctx, r))
			want = append(want, r.Key())
		}
	}
	must(t, "run at the cut", b.st.CreateRun(b.ctx, b.run("a", before, scheduler.RunSuccess)))
	var got []string
	var after *scheduler.Run
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("more than 10 pages; read so far %v", got)
		}
		page, err := b.st.RunsBefore(b.ctx, before, after, 4)
		must(t, "page", err)
		for _, v := range page {
			got = append(got, v.Rec.Key())
		}
		if len(page) < 4 {
			break
		}
		after = &page[len(page)-1].Rec
	}
	if !slices.Equal(got, want) {
		t.Fatalf("RunsBefore pages = %v; want %v", got, want)
	}
}

// RunsPage and GridRunsPage page through a DAG's runs newest first; runs sharing a logical
// date are neither skipped nor repeated, and a cursor that is not a run is ErrNotFound.
func TestRunsPageNeitherSkipsNorRepeats(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []string
	logical := map[string]time.Time{}
	for i := range 3 {
		at := b.clock.Add(-time.Duration(i) * time.Hour)
		r := b.run("d", at, scheduler.RunSuccess)
		custom := b.run("d", at, scheduler.RunSuccess)
		custom.RunID = fmt.Sprintf("custom-%d", i) // same logical date, its own key
		custom.RunType = scheduler.RunManual
		must(t, "run", b.st.CreateRun(b.ctx, r))
		must(t, "custom run", b.st.CreateRun(b.ctx, custom))
		want = append(want, r.Key(), custom.Key())
		logical[r.Key()], logical[custom.Key()] = at, at
	}
	must(t, "other DAG", b.st.CreateRun(b.ctx, b.run("e", b.clock, scheduler.RunSuccess)))

	pageThrough := func(page func(after string) ([]string, error)) []string {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("more than 10 pages; read so far %v", got)
			}
			keys, err := page(after)
			must(t, "page", err)
			got = append(got, keys...)
			if len(keys) < 2 {
				return got
			}
			after = keys[len(keys)-1]
		}
	}
	got := pageThrough(func(after string) ([]string, error) {
		vs, err := b.st.RunsPage(b.ctx, "d", after, 2)
		var keys []string
		for _, v := range vs {
			keys = append(keys, v.Rec.Key())
		}
		return keys, err
	})
	grid := pageThrough(func(after string) ([]string, error) {
		vs, err := b.st.GridRunsPage(b.ctx, "d", after, 2)
		var keys []string
		for _, v := range vs {
			keys = append(keys, v.Rec.Key())
		}
		return keys, err
	})
	for _, keys := range [][]string{got, grid} {
		for i := 1; i < len(keys); i++ {
			if logical[keys[i]].After(logical[keys[i-1]]) {
				t.Fatalf("pages %v are not newest first", keys)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(grid)
	slices.Sort(want)
	if !slices.Equal(got, want) || !slices.Equal(grid, want) {
		t.Fatalf("RunsPage read %v, GridRunsPage %v; want each of %v once", got, grid, want)
	}
	_, err := b.st.RunsPage(b.ctx, "d", "d~nope", 2)
	mustIs(t, "a cursor that is not a run", err, fsstore.ErrNotFound)
}
