package scheduler

import (
	"testing"
	"time"

	"github.com/updraft-dev/updraft/scheduler/schedule"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func daily(t *testing.T, start string) schedule.Timetable {
	c, err := schedule.ParseCron("5 0 * * *")
	if err != nil {
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	return schedule.Timetable{Cron: c, Loc: seoul, Start: mustTime(start)}
}

func TestPlanRuns(t *testing.T) {
	tt := daily(t, "2025-01-01T00:00:00+09:00")
	first, _ := tt.First()
	cases := []struct {
		name    string
		catchup bool
		now     string
		room    int
		want    []string // logical dates (.ds) of runs to create
		next    string   // .ds of the new cursor
	}{
		{"not due yet", false, "2025-01-02T00:04:00+09:00", 16, nil, "2025-01-01"},
		{"Seoul example: created at 2025-01-02 00:05 KST with ds 2025-01-01", false, "2025-01-02T00:05:00+09:00", 16, []string{"2025-01-01"}, "2025-01-02"},
		{"no catchup: only the latest", false, "2025-01-10T12:00:00+09:00", 16, []string{"2025-01-09"}, "2025-01-10"},
		{"catchup: all, oldest first", true, "2025-01-04T01:00:00+09:00", 16, []string{"2025-01-01", "2025-01-02", "2025-01-03"}, "2025-01-04"},
		{"catchup within room", true, "2025-01-10T01:00:00+09:00", 2, []string{"2025-01-01", "2025-01-02"}, "2025-01-03"},
		{"no room", true, "2025-01-10T01:00:00+09:00", 0, nil, "2025-01-01"},
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := PlanRuns(tt, c.catchup, first, mustTime(c.now), c.room)
			var got []string
			for _, iv := range p.Create {
				got = append(got, iv.Start.In(seoul).Format("2006-01-02"))
			}
			if len(got) != len(c.want) {
				t.Fatalf("created %v; want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("created %v; want %v", got, c.want)
				}
			}
			if p.Next == nil || p.Next.Start.In(seoul).Format("2006-01-02") != c.next {
				t.Fatalf("next cursor %v; want %s", p.Next, c.next)
			}
		})
	}
}

func TestPlanRunsStopsAtEnd(t *testing.T) {
	tt := daily(t, "2025-01-01T00:00:00+09:00")
	end := mustTime("2025-01-02T12:00:00+09:00")
	tt.End = &end
	first, _ := tt.First()
	p := PlanRuns(tt, true, first, mustTime("2025-02-01T00:00:00+09:00"), 16)
	if len(p.Create) != 2 || p.Next != nil {
		t.Fatalf("created %d, next %v; want the 2 intervals starting by end, then no cursor", len(p.Create), p.Next)
	}
}

func TestPlanRunsCountsSkippedIntervals(t *testing.T) {
	tt := daily(t, "2025-01-01T00:00:00+09:00")
	first, _ := tt.First()
	seoul, _ := time.LoadLocation("Asia/Seoul")
	ds := func(iv schedule.Interval) string { return iv.Start.In(seoul).Format("2006-01-02") }
	// Without catchup, Jan 1 … Jan 8 are passed over for Jan 9.
	p := PlanRuns(tt, false, first, mustTime("2025-01-10T12:00:00+09:00"), 16)
	if p.Skipped != 8 || ds(p.SkippedFrom) != "2025-01-01" || ds(p.SkippedTo) != "2025-01-08" {
		t.Fatalf("skipped %d from %s to %s; want 8, 2025-01-01 to 2025-01-08", p.Skipped, ds(p.SkippedFrom), ds(p.SkippedTo))
	}
	// With catchup nothing is skipped; with no room nothing is decided yet.
	if p := PlanRuns(tt, true, first, mustTime("2025-01-10T12:00:00+09:00"), 16); p.Skipped != 0 || len(p.Create) != 9 {
		t.Fatalf("catchup: skipped %d, created %d; want 0 and 9", p.Skipped, len(p.Create))
	}
	if p := PlanRuns(tt, false, first, mustTime("2025-01-10T12:00:00+09:00"), 0); p.Skipped != 0 {
		t.Fatalf("no room: skipped %d; want 0 (the cursor waits)", p.Skipped)
	}
}
