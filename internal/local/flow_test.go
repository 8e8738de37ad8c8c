package local_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

func TestWaitingSensorsHoldNoProcessAndNoGoroutine(t *testing.T) {
	s := startStack(t, time.Minute)
	var src strings.Builder
	src.WriteString("id: many_sensors\nowner: owner@example.com\nmax_active_tasks: 100\ntasks:\n")
	for i := range 100 {
		fmt.Fprintf(&src, "  - {id: wait_%03d, type: sensor.time, poke_interval: 1h, with: {delta: 24h}}\n", i)
	}
	d, err := dag.Parse("many_sensors.yaml", []byte(src.String()), dag.Options{
		ValidateCron: func(e string) error { _, err := schedule.ParseCron(e); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src.String())); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	baseline := runtime.NumGoroutine()
	at := time.Now()
	r, err := s.stack.Engine.Trigger(s.ctx, "many_sensors", nil, at)
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "100 sensors to wait in up_for_reschedule", func() bool {
		n := 0
		for _, st := range s.states(t, r) {
			if st == scheduler.TaskUpForReschedule {
				n++
			}
		}
		return n == 100
	})
	ti := mustTI(t, s, r, "wait_042")
	if want := r.IntervalEnd.Add(24 * time.Hour).Truncate(time.Microsecond); ti.TickDueAt == nil || !ti.TickDueAt.Equal(want) {
		t.Errorf("next poke at %v; want the sensor's target %v, not sooner", ti.TickDueAt, want)
	}
	if ti.CActive != 0 || ti.TryNumber != 1 {
		t.Errorf("a waiting sensor holds a slot (%d) or used a try (%d)", ti.CActive, ti.TryNumber)
	}
	if n := s.stack.Dispatcher.Spawned.Load(); n != 0 {
		t.Errorf("the pokes started %d worker processes; sensors poke inline", n)
	}
	if running := s.stack.Dispatcher.Running(); len(running) != 0 {
		t.Errorf("worker processes running while every sensor waits: %v", running)
	}
	// A sensor held between pokes would keep a goroutine (or a process) per task: 100 more.
	var now int
	s.until(t, "the pokes' goroutines to end", func() bool {
		runtime.GC()
		now = runtime.NumGoroutine()
		return now <= baseline+10
	})
	t.Logf("goroutines: %d before, %d with 100 sensors waiting", baseline, now)
}

func TestWaitFanOutBranchAndTriggerExample(t *testing.T) {
	var offset atomic.Int64 // moves the engine's clock ahead, for the next poke
	s := startStackClock(t, time.Minute, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	bq := bigQuery(t, s) // seeds events_20250226 (empty) … events_20250301
	s.deployExamples(t)
	if err := s.stack.Engine.SetPaused(s.ctx, "marts_daily", false); err != nil { // dag.trigger refuses paused DAGs
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	check := func(r *scheduler.Run, want map[string]scheduler.TaskState) {
		t.Helper()
		got := s.states(t, r)
		for task, w := range want {
			if got[task] != w {
				t.Errorf("%s/%s.%s is %s; want %s", r.DagID, r.RunID, task, got[task], w)
			}
		}
	}
	marts := func(r *scheduler.Run) *scheduler.Run {
		t.Helper()
		m, err := s.stack.Engine.RunAt(s.ctx, "marts_daily", r.LogicalDate)
		if err != nil || m == nil {
			t.Fatalf("no marts_daily run for %v (%v)", r.LogicalDate, err)
		}
		if got := s.waitRun(t, m); got != scheduler.RunSuccess {
			t.Fatalf("marts_daily: %s %v", got, s.states(t, m))
		}
		return m
	}

	// 2025-02-26's export is there but empty: the branch takes the nothing_to_load path.
	empty, err := s.stack.Engine.Trigger(s.ctx, "events_to_marts_daily", nil, time.Date(2025, 2, 26, 2, 0, 0, 0, seoul)) // ds: the logical date's date
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, empty); got != scheduler.RunSuccess {
		t.Fatalf("empty day: run %s %v", got, s.states(t, empty))
	}
	check(empty, map[string]scheduler.TaskState{
		"wait_for_export": "success", "count_rows": "success", "count_rows[0]": "success", "count_rows[1]": "success",
		"count_rows[2]": "success", "anything_to_load": "success", "load_counts": "skipped", "nothing_to_load": "success",
		"start_marts": "success",
	})
	marts(empty)

	// 2025-03-02's export is not there yet: the sensor waits, holding no worker.
	r, err := s.stack.Engine.Trigger(s.ctx, "events_to_marts_daily", nil, time.Date(2025, 3, 2, 2, 0, 0, 0, seoul))
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "the sensor to wait for the export", func() bool {
		return mustTI(t, s, r, "wait_for_export").State == scheduler.TaskUpForReschedule
	})
	if running := s.stack.Dispatcher.Running(); len(running) != 0 {
		t.Fatalf("worker processes running while the sensor waits: %v", running)
	}
	for _, q := range []string{
		"CREATE TABLE updraft_examples.events_20250302 (event_id INT64, source STRING, amount FLOAT64)",
		`INSERT INTO updraft_examples.events_20250302 (event_id, source, amount) VALUES (1, "orders", 5.5), (2, "orders", 4.5), (3, "sessions", 1.0)`,
	} {
		job, err := bq.Query(q).Run(s.ctx)
		if err == nil {
			_, err = job.Wait(s.ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	offset.Store(int64(5*time.Minute + time.Second)) // poke_interval has passed
	if rep := s.stack.TickOnce(s.ctx); rep.Poked != 1 {
		t.Fatalf("the tick poked %d sensors; want 1 (%v)", rep.Poked, rep.Errors)
	}
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s %v", got, s.states(t, r))
	}
	check(r, map[string]scheduler.TaskState{
		"wait_for_export": "success", "count_rows": "success", "anything_to_load": "success",
		"load_counts": "success", "nothing_to_load": "skipped", "start_marts": "success",
	})
	if ti := mustTI(t, s, r, "wait_for_export"); ti.TryNumber != 1 {
		t.Errorf("the sensor is on try %d after two pokes; pokes use no tries", ti.TryNumber)
	}
	if n := countRows(t, bq, "SELECT COUNT(*) FROM updraft_examples.event_counts_20250302"); n != 2 {
		t.Errorf("event_counts_20250302 has %d rows; want one per source with events (2)", n)
	}
	m := marts(r)
	if m.Conf != `{"source_day":"2025-03-02"}` || !m.IntervalStart.Equal(r.IntervalStart) {
		t.Errorf("marts run: conf %s, interval %v; want source_day 2025-03-02 and the same interval", m.Conf, m.IntervalStart)
	}
	out, errOut, code := s.cli("runs", "show", r.DagID+"/"+r.RunID)
	i0, i2, branch := strings.Index(out, "count_rows[0]"), strings.Index(out, "count_rows[2]"), strings.Index(out, "anything_to_load")
	if code != 0 || i0 < 0 || i2 < i0 || branch < i2 || !strings.Contains(out, "for_each: 3 instances") {
		t.Errorf("runs show lacks the instances:\n%s%s", out, errOut)
	}
}
