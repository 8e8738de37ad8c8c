package schedule

import (
	"math/bits"
	"time"
)

// searchYears bounds how far ahead Next looks before deciding a cron never fires. Eight years
// always reaches the next February 29, even across a non-leap century year such as 2100.
const searchYears = 8

// Next returns the first fire time strictly after after, as a time in loc (nil means UTC).
// It returns the zero time when the cron does not fire within the next eight years.
//
// When the hour field is not "*" or "*/1", the schedule follows loc's wall clock: Next finds the
// first matching wall-clock minute after after's wall-clock time. A wall time that does not
// exist because clocks jumped forward fires at the first instant after the gap (the transition
// instant), and a wall time that happens twice because clocks went back fires once, at its
// first occurrence. Several wall times resolving to the same instant fire once.
//
// When the hour field is "*" or "*/1", Next follows Airflow: it finds the next matching
// wall-clock minute as if loc had no DST and adds the wall-clock difference to after as a real
// duration. An hourly schedule therefore fires every real hour, 25 times on a fall-back day and
// 23 times on a spring-forward day. As in Airflow, a jump that crosses an offset change moves
// the fire by that change: "0 * * * 1" from Monday 23:00 fires next at 01:00 on the Monday after
// clocks go forward.
func (c *Cron) Next(after time.Time, loc *time.Location) time.Time {
	if c.minute == 0 || c.hour == 0 || c.dom == 0 || c.month == 0 || c.dow == 0 {
		return time.Time{} // the zero Cron
	}
	if loc == nil {
		loc = time.UTC
	}
	a := after.In(loc)
	_, off := a.Zone()
	naive := a.Unix() + int64(off) // after's wall clock, in seconds on the naive clock
	w := wallAt(naive)

	if c.hourStar {
		nw, ok := c.nextWall(w)
		if !ok {
			return time.Time{}
		}
		delta := time.Duration(nw.seconds()-naive)*time.Second - time.Duration(a.Nanosecond())
		return after.Add(delta).In(loc)
	}

	// Fast path: a wall time in after's zone period, at least two days into it, shows only once
	// and at after's offset. (Offsets never differ by 48 hours, so no earlier period can reach it.)
	zs, ze := a.ZoneBounds()
	// Each round moves w forward; more than a few rounds happen only when after lies in a
	// repeated (fall-back) hour, whose remaining wall times first occurred before after.
	for range 1 << 16 {
		nw, ok := c.nextWall(w)
		if !ok {
			return time.Time{}
		}
		ws := nw.seconds()
		var t time.Time
		if u := ws - int64(off); (zs.IsZero() || u-zs.Unix() >= 48*3600) && (ze.IsZero() || u < ze.Unix()) {
			t = time.Unix(u, 0).In(loc)
		} else {
			t = resolve(ws, loc)
		}
		if t.After(after) {
			return t
		}
		w = nw
	}
	return time.Time{}
}

// wall is a wall-clock minute, read without any timezone.
type wall struct{ year, month, day, hour, min int }

// seconds returns w as seconds since 1970-01-01 00:00 on the same naive clock.
func (w wall) seconds() int64 {
	return daysFromCivil(w.year, w.month, w.day)*86400 + int64(w.hour*3600+w.min*60)
}

// wallAt returns the wall-clock minute containing ws (seconds on the naive clock).
func wallAt(ws int64) wall {
	days, secs := ws/86400, ws%86400
	if secs < 0 {
		days, secs = days-1, secs+86400
	}
	y, m, d := civilFromDays(days)
	return wall{y, m, d, int(secs / 3600), int(secs % 3600 / 60)}
}

// nextWall returns the first wall-clock minute strictly after w's minute that matches c, or
// false when there is none within searchYears.
func (c *Cron) nextWall(w wall) (wall, bool) {
	y, mo, d, h, mi := w.year, w.month, w.day, w.hour, w.min+1
	limit := y + searchYears
	for y <= limit {
		if mi > 59 {
			mi, h = 0, h+1
		}
		if h > 23 {
			h, d = 0, d+1
		}
		if d > daysIn(y, mo) {
			d, mo = 1, mo+1
		}
		if mo > 12 {
			mo, y = 1, y+1
			continue
		}
		if c.month&(1<<mo) == 0 {
			if m := nextBit(c.month, mo); m >= 0 {
				mo = m
			} else {
				mo, y = nextBit(c.month, 1), y+1
			}
			d, h, mi = 1, 0, 0
			continue
		}
		if !c.dayMatches(y, mo, d) {
			d, h, mi = d+1, 0, 0
			continue
		}
		if c.hour&(1<<h) == 0 {
			nh := nextBit(c.hour, h)
			if nh < 0 {
				d, h, mi = d+1, 0, 0
				continue
			}
			h, mi = nh, 0
		}
		nm := nextBit(c.minute, mi)
		if nm < 0 {
			h, mi = h+1, 0
			continue
		}
		return wall{y, mo, d, h, nm}, true
	}
	return wall{}, false
}

// dayMatches applies the day-of-month and day-of-week fields: OR when both are restricted,
// AND when either starts with "*" (Vixie cron).
func (c *Cron) dayMatches(y, mo, d int) bool {
	domOK := c.dom&(1<<d) != 0
	dowOK := c.dow&(1<<weekday(y, mo, d)) != 0
	if c.domStar || c.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// nextBit returns the smallest set bit of set at position from or above, or -1.
func nextBit(set uint64, from int) int {
	if from > 63 {
		return -1
	}
	set = set >> from << from
	if set == 0 {
		return -1
	}
	return bits.TrailingZeros64(set)
}

// resolve returns the first instant whose wall clock in loc is at or after the wall time ws
// (seconds on the naive clock). For an ordinary wall time that is the instant showing it; for
// a repeated one, its first occurrence; for one skipped by a forward jump, the jump's instant.
func resolve(ws int64, loc *time.Location) time.Time {
	// No UTC offset exceeds 26 hours, so every instant before ws-26h shows an earlier wall time.
	// Walk the zone's periods from there; within a period the wall clock rises with the instant.
	t := time.Unix(ws-26*3600, 0).In(loc)
	for range 64 {
		_, off := t.Zone()
		_, end := t.ZoneBounds()
		if !end.IsZero() && !end.After(t) {
			// Beyond a zone's transition table Go derives periods from its TZ rule string and
			// reports a period ending at t on December 31 of leap years; the offset does not
			// actually change there, so assume it holds for the day.
			end = t.Add(24 * time.Hour)
		}
		u := max(ws-int64(off), t.Unix())
		if end.IsZero() || u < end.Unix() {
			return time.Unix(u, 0).In(loc)
		}
		t = end
	}
	n := wallAt(ws) // not reached with real zone data
	return time.Date(n.year, time.Month(n.month), n.day, n.hour, n.min, 0, 0, loc)
}

// daysFromCivil returns the number of days from 1970-01-01 to the given proleptic Gregorian date.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	doy := (153*((m+9)%12)+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int((mp+2)%12 + 1)
	y = int(yoe + era*400)
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekday returns the day of week of a date, 0 for Sunday.
func weekday(y, m, d int) int {
	w := (daysFromCivil(y, m, d) + 4) % 7 // 1970-01-01 was a Thursday
	if w < 0 {
		w += 7
	}
	return int(w)
}

func daysIn(y, m int) int {
	if m == 2 {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return daysInMonthMax[m]
}
