package taskrun

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// sensorContext is the context of one poke: a DAG in tz, a run whose data interval ends at
// end, the clock stopped at now. The poke's log goes to the returned buffer.
func sensorContext(t *testing.T, args map[string]any, tz string, end, now time.Time) (*Context, *bytes.Buffer) {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "orders", RunID: "scheduled__x", TaskID: "wait", TryNumber: 1, AttemptID: "a1"}
	var buf bytes.Buffer
	log, err := tasks.NewLogger(&buf, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &Context{
		Ref: ref, Args: args, Log: log, DAG: &dag.DAG{ID: "orders", Timezone: tz},
		Run:    scheduler.Run{DagID: "orders", IntervalStart: end.Add(-24 * time.Hour), IntervalEnd: end, LogicalDate: end.Add(-24 * time.Hour)},
		Getenv: allowLoopback,
		Now:    func() time.Time { return now },
	}, &buf
}

// logMessages is the messages of a poke's JSON log lines, one a line.
func logMessages(t *testing.T, raw string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		if line == "" {
			continue
		}
		var e tasks.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e.Message)
	}
	return strings.Join(out, "\n")
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSensorTimePokes(t *testing.T) {
	t.Parallel()
	// The interval ends at 00:30 on 2 January in Seoul, still 1 January in UTC: a wall-clock
	// target_time counts from the Seoul day.
	end := mustTime(t, "2025-01-01T15:30:00Z")
	cases := []struct {
		name   string
		tz     string
		args   map[string]any
		now    string
		target string // the target in RFC 3339
		ready  bool
	}{
		{"delta before", "Asia/Seoul", map[string]any{"delta": "2h"}, "2025-01-01T17:29:59Z", "2025-01-02T02:30:00+09:00", false},
		{"delta at the target", "Asia/Seoul", map[string]any{"delta": "2h"}, "2025-01-01T17:30:00Z", "2025-01-02T02:30:00+09:00", true},
		{"delta in days", "UTC", map[string]any{"delta": "1d"}, "2025-01-02T15:00:00Z", "2025-01-02T15:30:00Z", false},
		{"delta in seconds", "UTC", map[string]any{"delta": int64(90)}, "2025-01-01T15:32:00Z", "2025-01-01T15:31:30Z", true},
		{"wall clock before, on the DAG's day", "Asia/Seoul", map[string]any{"target_time": "06:30"}, "2025-01-01T21:00:00Z", "2025-01-02T06:30:00+09:00", false},
		{"wall clock after", "Asia/Seoul", map[string]any{"target_time": "06:30"}, "2025-01-01T21:30:01Z", "2025-01-02T06:30:00+09:00", true},
		{"wall clock in UTC", "UTC", map[string]any{"target_time": "06:30:15"}, "2025-01-01T06:00:00Z", "2025-01-01T06:30:15Z", false},
		{"wall clock in a DST gap", "America/New_York", map[string]any{"target_time": "02:30"}, "2025-03-09T06:00:00Z", "2025-03-09T03:30:00-04:00", false},
		{"wall clock repeated by DST: the first one", "America/New_York", map[string]any{"target_time": "01:30"}, "2025-11-02T05:00:00Z", "2025-11-02T01:30:00-04:00", false},
		{"RFC 3339", "Asia/Seoul", map[string]any{"target_time": "2025-01-03T00:00:00Z"}, "2025-01-02T23:59:59Z", "2025-01-03T09:00:00+09:00", false},
		{"RFC 3339 reached", "UTC", map[string]any{"target_time": "2025-01-03T09:00:00+09:00"}, "2025-01-03T00:00:00Z", "2025-01-03T00:00:00Z", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := end
			if c.tz == "America/New_York" {
				// The nights clocks spring forward (9 March) and fall back (2 November).
				dst = mustTime(t, c.now)
			}
			tc, log := sensorContext(t, c.args, c.tz, dst, mustTime(t, c.now))
			res := SensorTime().Run(context.Background(), tc)
			target := mustTime(t, c.target)
			if c.ready {
				if res.State != scheduler.AttemptSuccess || res.RescheduleAt != nil {
					t.Fatalf("state %s (%s), reschedule at %v; want success", res.State, res.Error, res.RescheduleAt)
				}
				if want := `{"target":"` + target.In(tc.DAG.Location()).Format(time.RFC3339) + `"}`; string(res.XCom) != want {
					t.Errorf("XCom %s, want %s", res.XCom, want)
				}
				return
			}
			if res.State != scheduler.AttemptReschedule || res.RescheduleAt == nil || !res.RescheduleAt.Equal(target) {
				t.Fatalf("state %s (%s), reschedule at %v; want up_for_reschedule at %s", res.State, res.Error, res.RescheduleAt, target)
			}
			if len(res.XCom) != 0 {
				t.Errorf("a poke that is not ready has XCom %s", res.XCom)
			}
			if msgs := logMessages(t, log.String()); !strings.Contains(msgs, "not yet") || !strings.Contains(msgs, target.In(tc.DAG.Location()).Format(time.RFC3339)) {
				t.Errorf("the log does not say what it waits for:\n%s", msgs)
			}
		})
	}
}

func TestSensorTimeBadArgsAreFinal(t *testing.T) {
	t.Parallel()
	end := mustTime(t, "2025-01-01T00:00:00Z")
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{}, "exactly one of delta"},
		{map[string]any{"delta": "1h", "target_time": "06:00"}, "exactly one of delta"},
		{map[string]any{"delta": "soon"}, "delta"},
		{map[string]any{"delta": "-1h"}, "negative"},
		{map[string]any{"target_time": "25:00"}, `target_time "25:00"`},
		{map[string]any{"target_time": "2025-01-01 06:00"}, "RFC 3339"},
		{map[string]any{"target_time": int64(6)}, "target_time must be a string"},
	}
	for _, c := range cases {
		tc, _ := sensorContext(t, c.args, "UTC", end, end)
		res := SensorTime().Run(context.Background(), tc)
		if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, c.want) {
			t.Errorf("%v: %s final=%v %q; want a final failure saying %q", c.args, res.State, res.Final, res.Error, c.want)
		}
	}
	tc, _ := sensorContext(t, map[string]any{"delta": "1h"}, "UTC", end, end)
	tc.Run.IntervalEnd = time.Time{}
	if res := SensorTime().Run(context.Background(), tc); !res.Final || !strings.Contains(res.Error, "no data_interval_end") {
		t.Errorf("a run without an interval: %+v", res)
	}
	tc.Args = map[string]any{"target_time": "2024-12-31T06:00:00Z"}
	if res := SensorTime().Run(context.Background(), tc); res.State != scheduler.AttemptSuccess {
		t.Errorf("an RFC 3339 target needs no interval: %+v", res)
	}
}

func TestSensorTimeCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{}, ""},
		{map[string]any{"delta": "1h", "target_time": "06:00"}, "target_time"},
		{map[string]any{"delta": "2 hours"}, "delta"},
		{map[string]any{"delta": 1.5}, "delta"},
		{map[string]any{"target_time": "6pm"}, "target_time"},
		{map[string]any{"target_time": "06:30", "timezone": "UTC"}, "timezone"},
	}
	for _, c := range cases {
		ps := SensorTime().Check(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	for _, ok := range []map[string]any{
		{"delta": "1h30m"}, {"delta": "1d"}, {"delta": int64(3600)}, {"delta": "{{ var \"wait\" }}"},
		{"target_time": "06:30"}, {"target_time": "2025-01-01T06:30:00+09:00"}, {"target_time": "{{ add .data_interval_end \"1h\" }}"},
	} {
		if ps := SensorTime().Check(ok); len(ps) != 0 {
			t.Errorf("%v flagged: %+v", ok, ps)
		}
	}
}

// The sensors are registered as inline types: a poke must not need a container.
func TestSensorTypesRegistered(t *testing.T) {
	t.Parallel()
	r := Core()
	for _, name := range []string{"sensor.time", "sensor.http"} { // sensor.bigquery_table: internal/tasktypes
		typ, err := r.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !typ.Inline || typ.Run == nil || typ.Check == nil {
			t.Errorf("%s: inline %v, run %v, check %v", name, typ.Inline, typ.Run != nil, typ.Check != nil)
		}
	}
}
