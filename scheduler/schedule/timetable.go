package schedule

import "time"

// Interval is a data interval [Start, End). A scheduled run covers one interval, runs once End
// has passed, and has Start as its logical date.
type Interval struct{ Start, End time.Time }

// Timetable is a DAG's schedule: when runs happen and which data interval each covers. The
// fire times of Cron cut time into consecutive intervals; the first starts at the first fire
// time at or after Start, and no interval starts after End. Times returned are in Loc.
type Timetable struct {
	Cron  *Cron          // nil: manual runs only (no schedule)
	Loc   *time.Location // the DAG's timezone; nil means UTC
	Start time.Time      // zero: no start (First then reports false; other methods are unbounded)
	End   *time.Time     // nil: open-ended
}

func (t Timetable) loc() *time.Location {
	if t.Loc == nil {
		return time.UTC
	}
	return t.Loc
}

func (t Timetable) next(after time.Time) time.Time { return t.Cron.Next(after, t.loc()) }

// afterEnd reports whether an interval starting at s is past End.
func (t Timetable) afterEnd(s time.Time) bool { return t.End != nil && s.After(*t.End) }

// First returns the first data interval: it starts at the first fire time at or after Start.
// It reports false when Cron is nil, Start is zero, that interval would start after End, or the
// cron never fires.
func (t Timetable) First() (Interval, bool) {
	if t.Cron == nil || t.Start.IsZero() {
		return Interval{}, false
	}
	s := t.next(t.Start.Add(-1))
	if s.IsZero() || t.afterEnd(s) {
		return Interval{}, false
	}
	e := t.next(s)
	if e.IsZero() {
		return Interval{}, false
	}
	return Interval{s, e}, true
}

// Following returns the interval right after iv: it starts at iv.End. It reports false when
// Cron is nil, that interval would start after End, or the cron fires no more.
func (t Timetable) Following(iv Interval) (Interval, bool) {
	if t.Cron == nil || t.afterEnd(iv.End) {
		return Interval{}, false
	}
	e := t.next(iv.End)
	if e.IsZero() {
		return Interval{}, false
	}
	return Interval{iv.End.In(t.loc()), e}, true
}

// LatestComplete returns the latest interval that is complete at now (End <= now), starts no
// earlier than the first interval and no later than End. It reports false when there is none
// yet or Cron is nil. It costs a few dozen Next calls at most, however far now is from Start.
func (t Timetable) LatestComplete(now time.Time) (Interval, bool) {
	if t.Cron == nil {
		return Interval{}, false
	}
	lim := now
	if t.End != nil && t.End.Before(lim) {
		lim = *t.End
	}
	s, ok := t.fireAtOrBefore(lim)
	for range 16 {
		if !ok {
			break
		}
		if e := t.next(s); !e.IsZero() && !e.After(now) {
			if first, ok := t.First(); ok && s.Before(first.Start) {
				// Only an hour-star schedule whose first jump crossed an offset change gets
				// here (see Cron.Next): walk the intervals from the first instead.
				return t.walkFrom(first, now)
			}
			return Interval{s, e}, true
		}
		s, ok = t.fireAtOrBefore(s.Add(-1))
	}
	return Interval{}, false
}

// walkFrom returns the last complete interval at now found by walking from first.
func (t Timetable) walkFrom(first Interval, now time.Time) (Interval, bool) {
	if first.End.After(now) {
		return Interval{}, false
	}
	iv := first
	for range 1 << 16 {
		n, ok := t.Following(iv)
		if !ok || n.End.After(now) {
			break
		}
		iv = n
	}
	return iv, true
}

// DueAfter returns up to n consecutive intervals whose End is strictly later than after, in
// order: the interval containing after (or the first interval, if after precedes it) and those
// following it. Intervals before Start or starting after End are never returned.
func (t Timetable) DueAfter(after time.Time, n int) []Interval {
	if t.Cron == nil || n <= 0 {
		return nil
	}
	var iv Interval
	var ok bool
	if lc, found := t.LatestComplete(after); found {
		iv, ok = t.Following(lc)
	} else if t.Start.IsZero() {
		if s := t.next(after); !s.IsZero() && !t.afterEnd(s) {
			if e := t.next(s); !e.IsZero() {
				iv, ok = Interval{s, e}, true
			}
		}
	} else {
		iv, ok = t.First()
	}
	var out []Interval
	for ok && len(out) < n {
		if iv.End.After(after) {
			out = append(out, iv)
		}
		iv, ok = t.Following(iv)
	}
	return out
}

// ForDate returns the interval whose logical date (Start) falls on the given calendar date in
// Loc: the one starting at the first fire time on that date. With "5 0 * * *" that is
// [D 00:05, D+1 00:05). With a nil Cron it is [D 00:00, D 00:00], midnight in Loc. It reports
// false when no fire time falls on the date or the date is invalid. It ignores Start and End,
// so callers decide whether a date outside them is allowed.
func (t Timetable) ForDate(year int, month time.Month, day int) (Interval, bool) {
	if month < time.January || month > time.December || day < 1 || day > daysIn(year, int(month)) {
		return Interval{}, false
	}
	loc := t.loc()
	midnight := resolve(daysFromCivil(year, int(month), day)*86400, loc)
	if t.Cron == nil {
		return Interval{midnight, midnight}, true
	}
	s := t.next(midnight.Add(-1))
	if s.IsZero() {
		return Interval{}, false
	}
	if y, m, d := s.Date(); y != year || m != month || d != day {
		return Interval{}, false
	}
	e := t.next(s)
	if e.IsZero() {
		return Interval{}, false
	}
	return Interval{s, e}, true
}

// Infer returns the data interval Airflow infers for a manual run with logical date T: for a
// scheduled DAG, the latest complete interval at T (End <= T, as LatestComplete); when there is
// none, and always when Cron is nil, the empty interval [T, T].
func (t Timetable) Infer(T time.Time) Interval {
	if iv, ok := t.LatestComplete(T); ok {
		return iv
	}
	T = T.In(t.loc())
	return Interval{T, T}
}

// fireAtOrBefore returns the latest fire time at or before x, not earlier than the first
// interval's start when Start is set. It brackets the answer by doubling a look-back window and
// then bisects, so its cost grows with the logarithm of the gap between fire times.
func (t Timetable) fireAtOrBefore(x time.Time) (time.Time, bool) {
	floor := t.Start.Add(-1) // Next(floor) is the first fire time
	hasFloor := !t.Start.IsZero()
	// fires reports whether some fire time after a is at or before x.
	fires := func(a time.Time) bool {
		n := t.next(a)
		return !n.IsZero() && !n.After(x)
	}

	hi := x // invariant: no fire time in (hi, x]
	var lo time.Time
	found := false
	for w := time.Minute; w <= 1<<24*time.Minute; w *= 2 { // up to ~32 years back
		a := x.Add(-w)
		atFloor := hasFloor && !a.After(floor)
		if atFloor {
			a = floor
		}
		if fires(a) {
			lo, found = a, true
			break
		}
		if atFloor {
			return time.Time{}, false
		}
		hi = a
	}
	if !found {
		return time.Time{}, false
	}
	for hi.Sub(lo) > time.Minute {
		if mid := lo.Add(hi.Sub(lo) / 2); fires(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	f := t.next(lo)
	for {
		n := t.next(f)
		if n.IsZero() || n.After(x) {
			return f, true
		}
		f = n
	}
}
