package engine_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// catchupRuns deploys a catchup DAG whose only task is a noop (runs finish at once), ticks at
// `now`, and returns its runs oldest first.
func catchupRuns(t *testing.T, cron, tz, start string, now time.Time) []scheduler.Run {
	t.Helper()
	b := setup(t, engine.Config{TickBatch: 1000})
	b.clock.Set(now)
	b.deploy(t, fmt.Sprintf(`id: tz
owner: owner@example.com
schedule: %q
timezone: %s
start: %s
catchup: true
max_active_runs: 1000
tasks:
  - {id: only, type: noop}
`, cron, tz, start))
	for range 3 { // each tick creates up to max_active_runs; noop runs end at once
		if _, err := b.eng.Tick(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := b.store.ListRuns(b.ctx, "tz", 2000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]scheduler.Run, len(vs))
	for i, v := range vs {
		out[i] = v.Rec
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalDate.Before(out[j].LogicalDate) })
	for i := 1; i < len(out); i++ {
		if !out[i-1].IntervalEnd.Equal(out[i].IntervalStart) {
			t.Fatalf("intervals not contiguous: %v then %v", out[i-1].IntervalEnd, out[i].IntervalStart)
		}
		if out[i].State != scheduler.RunSuccess {
			t.Fatalf("run %s is %s", out[i].RunID, out[i].State)
		}
	}
	return out
}

func mustLoad(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNewYorkWallClockAcrossBothTransitions(t *testing.T) {
	t.Parallel()
	ny := mustLoad(t, "America/New_York")
	runs := catchupRuns(t, "30 2 * * *", "America/New_York", "2025-03-07", time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC))
	var got []string
	for _, r := range runs {
		got = append(got, r.LogicalDate.In(ny).Format("01-02 15:04 MST"))
	}
	// 02:30 does not exist on March 9: the run fires at the first instant after the gap.
	want := []string{"03-07 02:30 EST", "03-08 02:30 EST", "03-09 03:00 EDT", "03-10 02:30 EDT", "03-11 02:30 EDT"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("March logical dates %v; want %v", got, want)
	}
	runs = catchupRuns(t, "30 1 * * *", "America/New_York", "2025-10-31", time.Date(2025, 11, 5, 12, 0, 0, 0, time.UTC))
	got = nil
	for _, r := range runs {
		got = append(got, r.LogicalDate.In(ny).Format("01-02 15:04 MST"))
	}
	// 01:30 happens twice on November 2: the run fires once, at the first (EDT).
	want = []string{"10-31 01:30 EDT", "11-01 01:30 EDT", "11-02 01:30 EDT", "11-03 01:30 EST", "11-04 01:30 EST"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("November logical dates %v; want %v", got, want)
	}
	if d := runs[2].IntervalEnd.Sub(runs[2].IntervalStart); d != 25*time.Hour {
		t.Fatalf("the interval across the fall-back is %s; want 25h", d)
	}
}

func TestBerlinHourlyRuns25And23TimesOnTransitionDays(t *testing.T) {
	t.Parallel()
	berlin := mustLoad(t, "Europe/Berlin")
	count := func(runs []scheduler.Run, y int, m time.Month, d int) int {
		n := 0
		for _, r := range runs {
			if ry, rm, rd := r.LogicalDate.In(berlin).Date(); ry == y && rm == m && rd == d {
				n++
			}
		}
		return n
	}
	autumn := catchupRuns(t, "0 * * * *", "Europe/Berlin", "2025-10-25", time.Date(2025, 10, 27, 6, 0, 0, 0, time.UTC))
	if n := count(autumn, 2025, 10, 26); n != 25 {
		t.Fatalf("runs on 2025-10-26 in Berlin: %d; want 25", n)
	}
	spring := catchupRuns(t, "0 * * * *", "Europe/Berlin", "2025-03-29", time.Date(2025, 3, 31, 6, 0, 0, 0, time.UTC))
	if n := count(spring, 2025, 3, 30); n != 23 {
		t.Fatalf("runs on 2025-03-30 in Berlin: %d; want 23", n)
	}
	for _, r := range append(autumn, spring...) {
		if d := r.IntervalEnd.Sub(r.IntervalStart); d != time.Hour {
			t.Fatalf("run %s covers %s; every hourly interval is one real hour", r.RunID, d)
		}
	}
}

func TestLordHoweHalfHourGap(t *testing.T) {
	t.Parallel()
	lh := mustLoad(t, "Australia/Lord_Howe")
	// On 2025-10-05 Lord Howe moves from 02:00 to 02:30: 02:15 does not exist.
	runs := catchupRuns(t, "15 2 * * *", "Australia/Lord_Howe", "2025-10-04", time.Date(2025, 10, 6, 12, 0, 0, 0, time.UTC))
	var got []string
	for _, r := range runs {
		got = append(got, r.LogicalDate.In(lh).Format("01-02 15:04 -0700"))
	}
	want := []string{"10-04 02:15 +1030", "10-05 02:30 +1100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("logical dates %v; want %v", got, want)
	}
}

func TestSeoulRunCreatedAfterMidnightHasYesterdaysDS(t *testing.T) {
	t.Parallel()
	seoul := mustLoad(t, "Asia/Seoul")
	// The tick at 2025-01-02 00:05 KST creates the run for 2025-01-01.
	runs := catchupRuns(t, "5 0 * * *", "Asia/Seoul", "2025-01-01", time.Date(2025, 1, 2, 0, 5, 0, 0, seoul))
	if len(runs) != 1 {
		t.Fatalf("%d runs; want 1", len(runs))
	}
	r := runs[0]
	if ds := r.IntervalStart.In(seoul).Format("2006-01-02"); ds != "2025-01-01" {
		t.Fatalf("ds = %s; want 2025-01-01", ds)
	}
	if r.RunID != "scheduled__2024-12-31T15:05:00Z" {
		t.Fatalf("run id %s", r.RunID)
	}
}
