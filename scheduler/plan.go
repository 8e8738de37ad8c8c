package scheduler

import (
	"time"

	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// RunPlan is what the tick does for one due DAG.
type RunPlan struct {
	// Create lists the data intervals to create runs for, oldest first.
	Create []schedule.Interval
	// Next is the interval after the last one created (the new cursor); nil when the
	// schedule has ended.
	Next *schedule.Interval
	// Skipped counts the complete intervals passed over without a run (catchup: false and
	// the tick came late), SkippedFrom and SkippedTo the first and last of them; Skipped is
	// at most MaxCountedSkips (then "at least").
	Skipped                int
	SkippedFrom, SkippedTo schedule.Interval
}

// MaxCountedSkips bounds how many skipped intervals PlanRuns counts one by one.
const MaxCountedSkips = 100000

// PlanRuns decides which scheduled runs a DAG gets now. next is the DAG's cursor (the next
// interval not yet created); room is how many more runs may be active (max_active_runs minus
// those queued or running). With catchup every complete interval is created, oldest first,
// within room; without it only the latest complete interval, skipping the ones before it.
func PlanRuns(tt schedule.Timetable, catchup bool, next schedule.Interval, now time.Time, room int) RunPlan {
	plan := RunPlan{Next: &next}
	if next.End.After(now) || room <= 0 {
		return plan
	}
	if !catchup {
		if latest, ok := tt.LatestComplete(now); ok && latest.Start.After(next.Start) {
			plan.SkippedFrom = next
			for iv, ok := next, true; ok && iv.Start.Before(latest.Start) && plan.Skipped < MaxCountedSkips; iv, ok = tt.Following(iv) {
				plan.Skipped++
				plan.SkippedTo = iv
			}
			next = latest
		}
	}
	cur := next
	for len(plan.Create) < room && !cur.End.After(now) {
		plan.Create = append(plan.Create, cur)
		following, ok := tt.Following(cur)
		if !ok {
			plan.Next = nil
			return plan
		}
		cur = following
		if !catchup {
			break
		}
	}
	plan.Next = &cur
	return plan
}
