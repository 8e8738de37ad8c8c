package web

import (
	"fmt"
	"time"
)

// Gantt geometry, in SVG user units.
const (
	ganttLabelW = 200
	ganttPlotW  = 760
	ganttRowH   = 24
	ganttAxisH  = 22
)

// ganttInput is one attempt to draw: its task, try, state, and when it was queued,
// started and ended (End nil: still running, drawn up to now).
type ganttInput struct {
	Task   string
	Try    int
	State  string
	Queued *time.Time
	Start  time.Time
	End    *time.Time
	Href   string
}

// ganttBar is an attempt placed on the chart: X/W its run, QX/QW the wait before it
// (queued → started; QW 0 when unknown).
type ganttBar struct {
	X, W, QX, QW int
	Y            int
	State        string
	Try          int
	Href         string
	Title        string
}

// ganttRow is a task's row, with its label's baseline.
type ganttRow struct {
	Task  string
	Y     int
	TextY int
	Bars  []ganttBar
}

// ganttTick is a time mark on the axis: its x, its label in the DAG's timezone and the
// UTC time for its title.
type ganttTick struct {
	X     int
	Label string
	UTC   string
}

// ganttChart is a run's attempts laid out on a shared time axis.
type ganttChart struct {
	Width, Height int
	LabelW        int
	Rows          []ganttRow
	Ticks         []ganttTick
	Span          time.Duration
}

var tickSteps = []time.Duration{
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// layoutGantt lays attempts out on one axis from the first queue/start to the last end
// (or now, for a running attempt), a row per task in the order tasks first appear in
// in, the ticks in loc. Every bar is at least 2 units wide, so a very short attempt stays
// visible and clickable.
func layoutGantt(in []ganttInput, now time.Time, loc *time.Location) ganttChart {
	c := ganttChart{LabelW: ganttLabelW, Width: ganttLabelW + ganttPlotW + 48} // room for the last tick's label
	if loc == nil {
		loc = time.UTC
	}
	var t0, t1 time.Time
	end := func(a ganttInput) time.Time {
		if a.End != nil {
			return *a.End
		}
		return now
	}
	for i, a := range in {
		s := a.Start
		if a.Queued != nil && a.Queued.Before(s) {
			s = *a.Queued
		}
		if i == 0 || s.Before(t0) {
			t0 = s
		}
		if e := end(a); i == 0 || e.After(t1) {
			t1 = e
		}
	}
	span := t1.Sub(t0)
	if span < time.Second {
		span = time.Second
	}
	c.Span = span
	x := func(t time.Time) int {
		return ganttLabelW + int(float64(ganttPlotW)*float64(t.Sub(t0))/float64(span))
	}
	rowOf := map[string]int{}
	for _, a := range in {
		r, ok := rowOf[a.Task]
		if !ok {
			r = len(c.Rows)
			rowOf[a.Task] = r
			y := ganttAxisH + r*ganttRowH
			c.Rows = append(c.Rows, ganttRow{Task: a.Task, Y: y, TextY: y + ganttRowH/2 + 4})
		}
		row := &c.Rows[r]
		b := ganttBar{X: x(a.Start), State: a.State, Try: a.Try, Href: a.Href, Y: row.Y + 4}
		b.W = max(2, x(end(a))-b.X)
		if a.Queued != nil && a.Queued.Before(a.Start) {
			b.QX = x(*a.Queued)
			b.QW = b.X - b.QX
		}
		d := end(a).Sub(a.Start).Round(time.Millisecond)
		running := ""
		if a.End == nil {
			running = ", so far"
		}
		b.Title = fmt.Sprintf("%s try %d: %s, %s%s, started %s (%s UTC)", a.Task, a.Try, styleOf(a.State).Label, d, running,
			a.Start.In(loc).Format("15:04:05 MST"), a.Start.UTC().Format("15:04:05"))
		row.Bars = append(row.Bars, b)
	}
	c.Height = ganttAxisH + len(c.Rows)*ganttRowH + 4
	if len(in) == 0 {
		return c
	}
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	format := "15:04:05"
	if step < time.Second {
		format = "15:04:05.000"
	}
	if step >= time.Minute {
		format = "15:04"
	}
	if step >= 24*time.Hour {
		format = "Jan 2"
	}
	// Ticks on round times in loc (a step of a day at local midnight).
	first := t0.In(loc).Truncate(step)
	if step >= time.Hour {
		y, m, d := t0.In(loc).Date()
		first = time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	for t := first; !t.After(t1); t = t.Add(step) {
		if t.Before(t0) {
			continue
		}
		c.Ticks = append(c.Ticks, ganttTick{X: x(t), Label: t.In(loc).Format(format), UTC: t.UTC().Format("2006-01-02 15:04:05.000") + " UTC"})
	}
	return c
}
