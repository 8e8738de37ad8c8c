package engine_test

import (
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

const dailyOK = `id: daily
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
max_active_runs: 3
tasks:
  - {id: a, type: test.ok}
`

func (b *bundle) finishAll(t *testing.T, dagID string) {
	t.Helper()
	runs, err := b.store.ListRuns(b.ctx, dagID, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		b.drive(t, &r.Rec)
	}
}

func TestBackfillOldestFirstWithinItsLimitAndSafeTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyOK)
	req := engine.BackfillRequest{DagID: "daily", From: "2025-01-01", To: "2025-01-05", MaxActiveRuns: 2}
	bf, existing, err := b.eng.StartBackfill(b.ctx, req)
	if err != nil || existing || bf.Total != 5 {
		t.Fatalf("start: %+v existing=%v err=%v; want 5 intervals", bf, existing, err)
	}
	runs, _ := b.store.ListRuns(b.ctx, "daily", 20)
	if got := runIDs(runs); len(got) != 2 || got[1] != "backfill__2025-01-01T00:00:00Z:running" || got[0] != "backfill__2025-01-02T00:00:00Z:running" {
		t.Fatalf("runs %v; want the two oldest intervals", got)
	}
	if _, existing, err := b.eng.StartBackfill(b.ctx, req); err != nil || !existing {
		t.Fatalf("second start: existing=%v %v; want the running one back", existing, err)
	}
	if runs, _ := b.store.ListRuns(b.ctx, "daily", 20); len(runs) != 2 {
		t.Fatalf("starting twice made more runs: %v", runIDs(runs))
	}
	for range 10 {
		b.finishAll(t, "daily")
		if _, err := b.eng.Tick(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	runs, _ = b.store.ListRuns(b.ctx, "daily", 20)
	backfilled := 0
	for _, r := range runs {
		if r.Rec.RunType == scheduler.RunBackfill && r.Rec.State == scheduler.RunSuccess {
			backfilled++
		}
	}
	if backfilled != 5 {
		t.Fatalf("runs %v; want 5 successful backfill runs (besides the tick's latest scheduled one)", runIDs(runs))
	}
	v, _ := b.store.GetBackfill(b.ctx, bf.ID)
	if v.Rec.State != scheduler.BackfillDone || v.Rec.Created != 5 {
		t.Fatalf("backfill %+v; want done with 5 created", v.Rec)
	}
}

func TestBackfillReprocessPolicies(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: daily
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
tasks:
  - {id: a, type: test.fail}
`)
	// Paused: the tick schedules nothing, and a backfill still runs, as in Airflow.
	if err := b.eng.SetPaused(b.ctx, "daily", true); err != nil {
		t.Fatal(err)
	}
	start := func(reprocess string) *scheduler.Backfill {
		bf, _, err := b.eng.StartBackfill(b.ctx, engine.BackfillRequest{DagID: "daily", From: "2025-01-01", To: "2025-01-02", Reprocess: reprocess})
		if err != nil {
			t.Fatal(err)
		}
		b.finishAll(t, "daily")
		for range 3 {
			b.eng.Tick(b.ctx)
		}
		v, _ := b.store.GetBackfill(b.ctx, bf.ID)
		return &v.Rec
	}
	first := start("none")
	if first.Created != 2 {
		t.Fatalf("first backfill created %d; want 2", first.Created)
	}
	if again := start("none"); again.Created != 0 || again.Skipped != 2 {
		t.Fatalf("reprocess none over existing runs: %+v; want 2 skipped", again)
	}
	if again := start("failed"); again.Rerun != 2 {
		t.Fatalf("reprocess failed over failed runs: %+v; want 2 re-run", again)
	}
	if n := b.runs["a"].Load(); n != 4 {
		t.Fatalf("task ran %d times; want 4 (2 created + 2 re-run)", n)
	}
	runs, _ := b.store.ListRuns(b.ctx, "daily", 20)
	if len(runs) != 2 {
		t.Fatalf("re-runs made new runs: %v", runIDs(runs))
	}
}

func TestBackfillAndScheduleShareOneRunPerLogicalDate(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyOK) // the fake clock is 2025-01-10 00:30: the tick runs Jan 9
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	bf, _, err := b.eng.StartBackfill(b.ctx, engine.BackfillRequest{DagID: "daily", From: "2025-01-09", To: "2025-01-09"})
	if err != nil {
		t.Fatal(err)
	}
	if bf.Created != 0 || bf.Skipped != 1 {
		t.Fatalf("backfill over the scheduled run: %+v; want it skipped", bf)
	}
	if runs, _ := b.store.ListRuns(b.ctx, "daily", 20); len(runs) != 1 {
		t.Fatalf("runs %v; want one per logical date", runIDs(runs))
	}
}

func TestBackfillBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, dailyOK)
	b.deploy(t, chain)
	for _, c := range []struct {
		req  engine.BackfillRequest
		want string
	}{
		{engine.BackfillRequest{DagID: "daily", From: "2025-01-05", To: "2025-01-01"}, "after --to"},
		{engine.BackfillRequest{DagID: "daily", From: "2024-12-01", To: "2025-01-01"}, "before the DAG's start"},
		{engine.BackfillRequest{DagID: "daily", From: "Jan 1", To: "2025-01-01"}, "dates like"},
		{engine.BackfillRequest{DagID: "daily", From: "2025-01-01", To: "2025-01-02", Reprocess: "all"}, "none, failed or completed"},
		{engine.BackfillRequest{DagID: "nope", From: "2025-01-01", To: "2025-01-02"}, "no DAG"},
		{engine.BackfillRequest{DagID: "chain", From: "2025-01-01", To: "2025-01-02"}, "no schedule"},
	} {
		_, _, err := b.eng.StartBackfill(b.ctx, c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error with %q", c.req, err, c.want)
		}
	}
	if runs, _ := b.store.ListRuns(b.ctx, "daily", 20); len(runs) != 0 {
		t.Fatalf("bad backfills created runs: %v", runIDs(runs))
	}
}
