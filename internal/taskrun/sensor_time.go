package taskrun

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// SensorTime is the `sensor.time` task type (Airflow's TimeDeltaSensor and TimeSensor): it
// waits until a time derived from the run's data interval.
//
//	with:
//	  delta: 2h              # data_interval_end + 2h (TimeDeltaSensor)
//	  # or
//	  target_time: "06:30"   # 06:30 in the DAG's timezone on data_interval_end's day (TimeSensor)
//	  # or
//	  target_time: "{{ add .data_interval_end \"90m\" }}"   # any RFC 3339 timestamp
//
// Before the target a poke reschedules the task for the target itself, so it is poked again
// exactly then, whatever its poke_interval.
func SensorTime() Type {
	return Type{Name: "sensor.time", Inline: true, Run: runSensorTime, Check: checkSensorTime}
}

var sensorTimeArgs = []string{"delta", "target_time"}

func checkSensorTime(with map[string]any) []dag.ArgProblem {
	ps := UnknownArgs(with, sensorTimeArgs)
	delta, hasDelta := with["delta"]
	tt, hasTarget := with["target_time"]
	switch {
	case hasDelta && hasTarget:
		ps = append(ps, dag.ArgProblem{Arg: "target_time", Msg: "give delta or target_time, not both", Hint: "delta: 2h, or target_time: \"06:30\""})
	case !hasDelta && !hasTarget:
		ps = append(ps, dag.ArgProblem{Msg: "a sensor.time task needs with.delta or with.target_time", Hint: "delta: 2h (after data_interval_end), or target_time: \"06:30\""})
	}
	if hasDelta && !IsTemplate(delta) {
		if _, err := sensorDelta(delta); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "delta", Msg: err.Error(), Hint: "delta: 2h (or 30m, 1d, 1h30m)"})
		}
	}
	if hasTarget && !IsTemplate(tt) {
		if _, err := parseTargetTime(tt, time.Time{}, time.UTC); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "target_time", Msg: err.Error(), Hint: "target_time: \"06:30\" or an RFC 3339 time like 2025-01-01T06:30:00+09:00"})
		}
	}
	return ps
}

// sensorDelta reads delta: a duration as DAG files write them (2h, 30m, 1d), or a whole
// number of seconds.
func sensorDelta(v any) (time.Duration, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case int:
		s = fmt.Sprint(x)
	case int64:
		s = fmt.Sprint(x)
	default:
		return 0, fmt.Errorf("delta must be a duration like 2h, not %v", v)
	}
	d, err := dag.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("delta: %w", err)
	}
	return d, nil
}

// parseTargetTime reads target_time: "HH:MM" or "HH:MM:SS", a wall-clock time in loc on the
// calendar day of ref in loc (see onDay), or an RFC 3339 timestamp.
func parseTargetTime(v any, ref time.Time, loc *time.Location) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("target_time must be a string (\"06:30\" or an RFC 3339 time), not %v", v)
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"15:04", "15:04:05"} {
		if c, err := time.Parse(layout, s); err == nil {
			return onDay(ref.In(loc), c.Hour(), c.Minute(), c.Second()), nil
		}
	}
	if strings.Contains(s, "T") || strings.Count(s, "-") >= 2 {
		return time.Time{}, fmt.Errorf("target_time %q is not an RFC 3339 time (it needs a T, seconds and an offset, like 2025-01-01T06:30:00+09:00)", s)
	}
	return time.Time{}, fmt.Errorf("target_time %q is neither HH:MM (00:00 to 23:59) nor an RFC 3339 time", s)
}

// onDay is the wall-clock time h:m:s on day's calendar day in day's location. A time that a
// DST change skips is moved forward by the gap (02:30 becomes 03:30); a time it repeats is
// its first occurrence. (time.Date leaves both choices unspecified.)
func onDay(day time.Time, h, m, s int) time.Time {
	loc := day.Location()
	t := time.Date(day.Year(), day.Month(), day.Day(), h, m, s, 0, loc)
	if t.Hour() != h || t.Minute() != m || t.Second() != s {
		// In a gap: read the wall clock with the offset in force before it.
		_, off := t.Add(-6 * time.Hour).Zone()
		return time.Date(day.Year(), day.Month(), day.Day(), h, m, s, 0, time.UTC).Add(-time.Duration(off) * time.Second).In(loc)
	}
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		if e := t.Add(-back); e.Hour() == h && e.Minute() == m && e.Second() == s {
			return e // the first of two
		}
	}
	return t
}

// isWallClock reports whether target_time is a time of day rather than a timestamp.
func isWallClock(v any) bool {
	s, _ := v.(string)
	return strings.Count(s, ":") >= 1 && !strings.ContainsAny(s, "T-")
}

func runSensorTime(_ context.Context, tc *Context) engine.Result {
	a := tc.Args
	delta, hasDelta := a["delta"]
	tt, hasTarget := a["target_time"]
	if hasDelta == hasTarget {
		return Final("sensor.time: give exactly one of delta (a duration after data_interval_end, like 2h) and target_time (\"06:30\" or an RFC 3339 time)")
	}
	if tc.Now == nil {
		return Final("sensor.time: this worker gives tasks no clock (Context.Now is nil)")
	}
	loc := time.UTC
	if tc.DAG != nil {
		loc = tc.DAG.Location()
	}
	var (
		target time.Time
		from   string
	)
	if tc.Run.IntervalEnd.IsZero() && (hasDelta || isWallClock(tt)) {
		return Final("sensor.time: this run has no data_interval_end to count from: give target_time as an RFC 3339 time")
	}
	if hasDelta {
		d, err := sensorDelta(delta)
		if err != nil {
			return Final("sensor.time: " + err.Error() + " (write delta: 2h)")
		}
		target = tc.Run.IntervalEnd.Add(d)
		from = fmt.Sprintf("data_interval_end %s + %s", tc.Run.IntervalEnd.In(loc).Format(time.RFC3339), delta)
	} else {
		t, err := parseTargetTime(tt, tc.Run.IntervalEnd, loc)
		if err != nil {
			return Final("sensor.time: " + err.Error())
		}
		target = t
		from = fmt.Sprintf("target_time %v", tt)
	}
	target = target.In(loc)
	now := tc.Now()
	if now.Before(target) {
		tc.Log.Info(fmt.Sprintf("sensor.time: it is %s, before %s (%s): not yet", now.In(loc).Format(time.RFC3339), target.Format(time.RFC3339), from))
		at := target
		return engine.Result{State: scheduler.AttemptReschedule, RescheduleAt: &at}
	}
	tc.Log.Info(fmt.Sprintf("sensor.time: it is %s, at or after %s (%s): condition met", now.In(loc).Format(time.RFC3339), target.Format(time.RFC3339), from))
	return SensorXCom("sensor.time", map[string]string{"target": target.Format(time.RFC3339Nano)})
}

// SensorXCom is a successful poke with a small JSON value as its XCom.
func SensorXCom(typ string, v any) engine.Result {
	b, err := json.Marshal(v)
	if err != nil {
		return Failed(nil, typ+": encoding the XCom value: "+err.Error())
	}
	return engine.Result{State: scheduler.AttemptSuccess, XCom: b}
}
