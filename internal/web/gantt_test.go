package web

import (
	"strings"
	"testing"
	"time"
)

func TestLayoutGantt(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	seoul, _ := time.LoadLocation("Asia/Seoul")
	c := layoutGantt([]ganttInput{
		{Task: "extract", Try: 1, State: "success", Queued: at(0), Start: *at(2), End: at(30)},
		{Task: "load", Try: 1, State: "failed", Start: *at(31), End: at(40)},
		{Task: "load", Try: 2, State: "running", Queued: at(50), Start: *at(55)},
	}, t0.Add(60*time.Second), seoul)
	if len(c.Rows) != 2 || c.Rows[0].Task != "extract" || len(c.Rows[1].Bars) != 2 {
		t.Fatalf("rows %+v", c.Rows)
	}
	ex := c.Rows[0].Bars[0]
	if ex.QX != ganttLabelW || ex.QW <= 0 || ex.X != ex.QX+ex.QW {
		t.Errorf("extract's wait and run: %+v", ex)
	}
	run := c.Rows[1].Bars[1]
	if end := run.X + run.W; end != ganttLabelW+ganttPlotW {
		t.Errorf("the running attempt ends at %d; want now, the right edge %d", end, ganttLabelW+ganttPlotW)
	}
	if !strings.Contains(run.Title, "so far") || !strings.Contains(run.Title, "KST") {
		t.Errorf("title %q", run.Title)
	}
	if len(c.Ticks) < 3 || c.Ticks[0].Label != "19:00:00" || !strings.HasSuffix(c.Ticks[0].UTC, "10:00:00.000 UTC") {
		t.Errorf("ticks %+v", c.Ticks)
	}
	for _, tk := range c.Ticks {
		if tk.X < ganttLabelW || tk.X > ganttLabelW+ganttPlotW {
			t.Errorf("tick outside the plot: %+v", tk)
		}
	}
	// A zero-length attempt still shows.
	z := layoutGantt([]ganttInput{{Task: "a", State: "success", Start: t0, End: &t0}}, t0, nil)
	if z.Rows[0].Bars[0].W < 2 {
		t.Errorf("zero-length bar %+v", z.Rows[0].Bars[0])
	}
	// A run of two seconds gets sub-second ticks.
	short := t0.Add(2 * time.Second)
	if s := layoutGantt([]ganttInput{{Task: "a", State: "success", Start: t0, End: &short}}, short, nil); len(s.Ticks) < 4 || !strings.Contains(s.Ticks[1].Label, ".") {
		t.Errorf("short run ticks %+v", s.Ticks)
	}
	if e := layoutGantt(nil, t0, nil); len(e.Rows) != 0 || len(e.Ticks) != 0 {
		t.Errorf("empty %+v", e)
	}
}
