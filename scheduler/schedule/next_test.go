package schedule

import (
	"fmt"
	"testing"
	"time"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustCron(t testing.TB, expr string) *Cron {
	t.Helper()
	c, err := ParseCron(expr)
	if err != nil {
		t.Fatalf("ParseCron(%q): %v", expr, err)
	}
	return c
}

func utc(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

// fires returns the successive fire times after from, up to n of them.
func fires(c *Cron, from time.Time, loc *time.Location, n int) []time.Time {
	var out []time.Time
	for t := from; len(out) < n; {
		t = c.Next(t, loc)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

func checkFires(t *testing.T, expr, zone string, from time.Time, want ...time.Time) {
	t.Helper()
	loc := mustLoc(t, zone)
	got := fires(mustCron(t, expr), from, loc, len(want))
	if len(got) != len(want) {
		t.Fatalf("%s in %s from %v: got %d fires %v, want %d", expr, zone, from, len(got), got, len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("%s in %s from %v: fire %d = %v (%v), want %v", expr, zone, from, i, got[i].UTC(), got[i], want[i].UTC())
		}
		if got[i].Location() != loc {
			t.Errorf("fire %d is in %v, want %v", i, got[i].Location(), loc)
		}
	}
}

func TestNextSpringForwardGap(t *testing.T) {
	// New York, 2025-03-09: 02:00 EST jumps to 03:00 EDT; 02:30 fires at 03:00 EDT.
	checkFires(t, "30 2 * * *", "America/New_York", utc(2025, 3, 8, 0, 0),
		utc(2025, 3, 8, 7, 30), utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30))
	// Two wall times in the gap resolve to the same instant and fire once.
	checkFires(t, "0,30 2 * * *", "America/New_York", utc(2025, 3, 9, 6, 59),
		utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 0), utc(2025, 3, 10, 6, 30))
	// Starting exactly at the transition instant does not fire it again.
	checkFires(t, "0,30 2 * * *", "America/New_York", utc(2025, 3, 9, 7, 0),
		utc(2025, 3, 10, 6, 0))
	// Lord Howe, 2025-10-05: 02:00 +10:30 jumps to 02:30 +11:00 (15:30 UTC on the 4th).
	checkFires(t, "15 2 * * *", "Australia/Lord_Howe", utc(2025, 10, 3, 0, 0),
		utc(2025, 10, 3, 15, 45), utc(2025, 10, 4, 15, 30), utc(2025, 10, 5, 15, 15))
	lh := mustLoc(t, "Australia/Lord_Howe")
	if got := mustCron(t, "15 2 * * *").Next(utc(2025, 10, 4, 0, 0), lh); got.Format("15:04 -0700") != "02:30 +1100" {
		t.Errorf("Lord Howe gap fire shows %s, want 02:30 +1100", got.Format("15:04 -0700"))
	}
}

func TestNextFallBackRepeat(t *testing.T) {
	// New York, 2025-11-02: 02:00 EDT goes back to 01:00 EST. 01:30 happens twice and fires
	// once, at 01:30 EDT (05:30 UTC).
	checkFires(t, "30 1 * * *", "America/New_York", utc(2025, 11, 1, 0, 0),
		utc(2025, 11, 1, 5, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30))
	// 02:30 exists once that day, as EST.
	checkFires(t, "30 2 * * *", "America/New_York", utc(2025, 11, 1, 0, 0),
		utc(2025, 11, 1, 6, 30), utc(2025, 11, 2, 7, 30), utc(2025, 11, 3, 7, 30))
	// From inside the second 01:xx, the rest of that hour has already happened.
	checkFires(t, "45 1 * * *", "America/New_York", utc(2025, 11, 2, 6, 30),
		utc(2025, 11, 3, 6, 45))
	checkFires(t, "*/20 1,2 * * *", "America/New_York", utc(2025, 11, 2, 5, 30),
		utc(2025, 11, 2, 5, 40), utc(2025, 11, 2, 7, 0), utc(2025, 11, 2, 7, 20))
	// Lord Howe, 2025-04-06: 02:00 +11:00 goes back to 01:30 +10:30.
	checkFires(t, "45 1 * * *", "Australia/Lord_Howe", utc(2025, 4, 5, 0, 0),
		utc(2025, 4, 5, 14, 45), utc(2025, 4, 6, 15, 15))
}

func TestNextEveryTwoHours(t *testing.T) {
	// "0 */2" follows the wall clock: on 03-09 02:00 falls in the gap and fires at 03:00 EDT;
	// on 11-02 02:00 EST comes three real hours after 00:00 EDT because 01:xx repeats.
	checkFires(t, "0 */2 * * *", "America/New_York", utc(2025, 3, 9, 4, 0),
		utc(2025, 3, 9, 5, 0), utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 8, 0), utc(2025, 3, 9, 10, 0))
	checkFires(t, "0 */2 * * *", "America/New_York", utc(2025, 11, 2, 3, 0),
		utc(2025, 11, 2, 4, 0), utc(2025, 11, 2, 7, 0), utc(2025, 11, 2, 9, 0))
	checkFires(t, "0 */2 * * *", "UTC", utc(2025, 1, 1, 23, 0),
		utc(2025, 1, 2, 0, 0), utc(2025, 1, 2, 2, 0))
}

func TestNextUTCDaily(t *testing.T) {
	checkFires(t, "@daily", "UTC", utc(2024, 12, 30, 12, 0),
		utc(2024, 12, 31, 0, 0), utc(2025, 1, 1, 0, 0), utc(2025, 1, 2, 0, 0))
	checkFires(t, "0 0 * * *", "UTC", utc(2025, 1, 1, 0, 0), utc(2025, 1, 2, 0, 0))
	// Seconds and nanoseconds of after are ignored: the next whole minute strictly after.
	checkFires(t, "* * * * *", "UTC", utc(2025, 1, 1, 0, 0).Add(30*time.Second+5), utc(2025, 1, 1, 0, 1))
	checkFires(t, "@yearly", "UTC", utc(2024, 2, 29, 0, 0), utc(2025, 1, 1, 0, 0), utc(2026, 1, 1, 0, 0))
	checkFires(t, "0 0 29 2 *", "UTC", utc(2025, 1, 1, 0, 0), utc(2028, 2, 29, 0, 0), utc(2032, 2, 29, 0, 0))
	checkFires(t, "0 0 29 2 *", "UTC", utc(2097, 1, 1, 0, 0), utc(2104, 2, 29, 0, 0))
	// A nil location means UTC.
	if got := mustCron(t, "@daily").Next(utc(2025, 1, 1, 1, 0), nil); !got.Equal(utc(2025, 1, 2, 0, 0)) {
		t.Errorf("Next with nil loc = %v", got)
	}
}

func TestNextSeoul(t *testing.T) {
	kst := mustLoc(t, "Asia/Seoul")
	checkFires(t, "5 0 * * *", "Asia/Seoul", time.Date(2025, 1, 1, 0, 0, 0, 0, kst),
		time.Date(2025, 1, 1, 0, 5, 0, 0, kst), time.Date(2025, 1, 2, 0, 5, 0, 0, kst))
}

func TestNextHourlyBerlin(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	for _, tt := range []struct {
		day  int
		mo   time.Month
		want int
	}{{26, time.October, 25}, {30, time.March, 23}, {1, time.June, 24}} {
		for _, expr := range []string{"0 * * * *", "@hourly", "0 */1 * * *"} {
			c := mustCron(t, expr)
			start := time.Date(2025, tt.mo, tt.day, 0, 0, 0, 0, berlin)
			end := time.Date(2025, tt.mo, tt.day+1, 0, 0, 0, 0, berlin)
			n := 0
			prev := start
			for f := c.Next(start.Add(-1), berlin); f.Before(end); f = c.Next(f, berlin) {
				if f.Sub(prev) != time.Hour && n > 0 {
					t.Errorf("%s: gap %v before %v", expr, f.Sub(prev), f)
				}
				if f.UTC().Minute() != 0 {
					t.Errorf("%s: fire %v not on a whole hour", expr, f)
				}
				prev = f
				n++
			}
			if n != tt.want {
				t.Errorf("%s on 2025-%02d-%02d in Berlin: %d fires, want %d", expr, tt.mo, tt.day, n, tt.want)
			}
		}
	}
	// Exact instants across the fall-back hour: every real hour, the wall clock shows 02:00 twice.
	checkFires(t, "0 * * * *", "Europe/Berlin", utc(2025, 10, 25, 23, 30),
		utc(2025, 10, 26, 0, 0), utc(2025, 10, 26, 1, 0), utc(2025, 10, 26, 2, 0))
	checkFires(t, "*/30 * * * *", "Europe/Berlin", utc(2025, 3, 30, 0, 15),
		utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 1, 30))
}

func TestNextHourStarJump(t *testing.T) {
	// The Airflow rule adds the wall-clock gap as real time, so a jump across a DST change
	// shifts the first fire after it: Mondays-only hourly, Berlin, over 2025-03-30.
	checkFires(t, "0 * * * 1", "Europe/Berlin", utc(2025, 3, 24, 21, 30),
		utc(2025, 3, 24, 22, 0), utc(2025, 3, 30, 23, 0), utc(2025, 3, 31, 0, 0))
	berlin := mustLoc(t, "Europe/Berlin")
	if got := mustCron(t, "0 * * * 1").Next(utc(2025, 3, 24, 22, 0), berlin); got.Format("Mon 15:04") != "Mon 01:00" {
		t.Errorf("first fire after the jump shows %s, want Mon 01:00", got.Format("Mon 15:04"))
	}
}

func TestDomDow(t *testing.T) {
	// Both restricted: OR. 2025-06-13 is a Friday; 2025-07-13 a Sunday.
	checkFires(t, "0 0 13 * 5", "UTC", utc(2025, 6, 12, 0, 0),
		utc(2025, 6, 13, 0, 0), utc(2025, 6, 20, 0, 0), utc(2025, 6, 27, 0, 0),
		utc(2025, 7, 4, 0, 0), utc(2025, 7, 11, 0, 0), utc(2025, 7, 13, 0, 0), utc(2025, 7, 18, 0, 0))
	// Day of month starts with '*': AND. Fridays on odd days: 2025-06-13, 06-27, 07-11, 07-25.
	checkFires(t, "0 0 */2 * 5", "UTC", utc(2025, 6, 1, 0, 0),
		utc(2025, 6, 13, 0, 0), utc(2025, 6, 27, 0, 0), utc(2025, 7, 11, 0, 0), utc(2025, 7, 25, 0, 0))
	// Day of week starts with '*': AND. The 13th only when it is a Sun/Tue/Thu/Sat.
	checkFires(t, "0 0 13 * */2", "UTC", utc(2025, 1, 1, 0, 0),
		utc(2025, 2, 13, 0, 0), utc(2025, 3, 13, 0, 0), utc(2025, 4, 13, 0, 0), utc(2025, 5, 13, 0, 0), utc(2025, 7, 13, 0, 0))
	// Weekdays by name, and Sunday as 7.
	checkFires(t, "0 9 * * MON-FRI", "UTC", utc(2025, 6, 6, 10, 0), utc(2025, 6, 9, 9, 0))
	checkFires(t, "0 9 * * 7", "UTC", utc(2025, 6, 6, 10, 0), utc(2025, 6, 8, 9, 0))
	checkFires(t, "0 0 31 4 1", "UTC", utc(2025, 4, 20, 0, 0), utc(2025, 4, 21, 0, 0), utc(2025, 4, 28, 0, 0), utc(2026, 4, 6, 0, 0))
}

func TestNextNeverFires(t *testing.T) {
	// Day of week starts with '*', so AND: February 29 falls on a Tuesday in 2028, Sunday 2032,
	// Friday 2036, Wednesday 2040, Monday 2044, Saturday 2048 and Thursday 2052.
	c := mustCron(t, "0 0 29 2 */3") // Feb 29 on Sun, Wed or Sat
	if got := c.Next(utc(2025, 1, 1, 0, 0), time.UTC); !got.Equal(utc(2032, 2, 29, 0, 0)) {
		t.Errorf("Next = %v, want 2032-02-29", got)
	}
	c = mustCron(t, "0 0 29 2 1") // OR: every Monday in February, so it does fire
	if got := c.Next(utc(2025, 1, 1, 0, 0), time.UTC); !got.Equal(utc(2025, 2, 3, 0, 0)) {
		t.Errorf("Next = %v", got)
	}
	c = mustCron(t, "0 0 29 2 */4") // Feb 29 on Sun or Thu: 2052, more than 8 years after 2033
	if got := c.Next(utc(2033, 1, 1, 0, 0), time.UTC); !got.IsZero() {
		t.Errorf("Next = %v, want zero (gives up after %d years)", got, searchYears)
	}
	if got := (&Cron{}).Next(utc(2025, 1, 1, 0, 0), time.UTC); !got.IsZero() {
		t.Errorf("zero Cron Next = %v, want zero", got)
	}
}

func TestResolve(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	for _, tt := range []struct {
		wall wall
		want time.Time
	}{
		{wall{2025, 3, 9, 1, 59}, utc(2025, 3, 9, 6, 59)},
		{wall{2025, 3, 9, 2, 0}, utc(2025, 3, 9, 7, 0)},
		{wall{2025, 3, 9, 2, 59}, utc(2025, 3, 9, 7, 0)},
		{wall{2025, 3, 9, 3, 0}, utc(2025, 3, 9, 7, 0)},
		{wall{2025, 3, 9, 3, 1}, utc(2025, 3, 9, 7, 1)},
		{wall{2025, 11, 2, 0, 59}, utc(2025, 11, 2, 4, 59)},
		{wall{2025, 11, 2, 1, 0}, utc(2025, 11, 2, 5, 0)},
		{wall{2025, 11, 2, 1, 59}, utc(2025, 11, 2, 5, 59)},
		{wall{2025, 11, 2, 2, 0}, utc(2025, 11, 2, 7, 0)},
		{wall{1800, 1, 1, 0, 0}, time.Date(1800, 1, 1, 0, 0, 0, 0, ny)},
		{wall{2200, 7, 1, 12, 0}, utc(2200, 7, 1, 16, 0)},
		// Go reports a bogus zone period ending on 2040-12-31 00:00 UTC (a leap year beyond
		// the transition table); the walk must step over it.
		{wall{2040, 12, 31, 12, 0}, utc(2040, 12, 31, 17, 0)},
		{wall{2040, 12, 30, 20, 0}, utc(2040, 12, 31, 1, 0)},
		{wall{2041, 3, 10, 2, 30}, utc(2041, 3, 10, 7, 0)},
		{wall{2041, 11, 3, 1, 30}, utc(2041, 11, 3, 5, 30)},
	} {
		if got := resolve(tt.wall.seconds(), ny); !got.Equal(tt.want) {
			t.Errorf("resolve(%+v) = %v, want %v", tt.wall, got.UTC(), tt.want.UTC())
		}
	}
}

func TestCivil(t *testing.T) {
	for d := utc(-401, 12, 25, 0, 0); d.Year() < 2420; d = d.AddDate(0, 0, 13) {
		y, m, dd := d.Date()
		if got, want := daysFromCivil(y, int(m), dd), d.Unix()/86400; got != want {
			t.Fatalf("daysFromCivil(%v) = %d, want %d", d, got, want)
		}
		if gy, gm, gd := civilFromDays(d.Unix() / 86400); gy != y || gm != int(m) || gd != dd {
			t.Fatalf("civilFromDays(%v) = %d-%d-%d", d, gy, gm, gd)
		}
		if w := wallAt(d.Unix() + 13*3600 + 59*60 + 59); w != (wall{y, int(m), dd, 13, 59}) {
			t.Fatalf("wallAt(%v 13:59:59) = %+v", d, w)
		}
		if got := weekday(y, int(m), dd); got != int(d.Weekday()) {
			t.Fatalf("weekday(%v) = %d, want %d", d, got, d.Weekday())
		}
		if daysIn(y, int(m)) != time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() {
			t.Fatalf("daysIn(%d, %d) wrong", y, m)
		}
	}
}

var propZones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata",
	"America/Sao_Paulo", "Pacific/Chatham", "Asia/Tehran", "Africa/Casablanca", "Pacific/Apia",
	"America/Havana", "Asia/Gaza", "Antarctica/Troll", "America/St_Johns",
}

var propCrons = []string{
	"0 * * * *", "*/15 * * * *", "30 2 * * *", "0 0 * * *", "0 */2 * * *", "15 1,2,3 * * 1-5",
	"0 0 1 * *", "*/7 0-3 * * *", "45 23 * * 0", "0 0 13 * 5", "5 0 * * *", "0,30 0-2 * * *",
	"* 1 * * *",
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// wallClock returns t's wall-clock time in loc in naive seconds.
func wallClock(t time.Time, loc *time.Location) int64 {
	t = t.In(loc)
	_, off := t.Zone()
	return t.Unix() + int64(off)
}

// wallMatches reports whether the naive minute ws matches c.
func wallMatches(c *Cron, ws int64) bool {
	t := time.Unix(ws, 0).UTC()
	y, m, d := t.Date()
	return c.minute&(1<<t.Minute()) != 0 && c.hour&(1<<t.Hour()) != 0 &&
		c.month&(1<<m) != 0 && c.dayMatches(y, int(m), d)
}

// TestNextProperties runs Next over several years in several zones: fire times strictly increase,
// wall-clock schedules match a brute-force oracle, and hour-star schedules match their wall clock
// except across a change of offset.
func TestNextProperties(t *testing.T) {
	ranges := [][2]time.Time{{utc(2018, 10, 1, 0, 0), utc(2021, 4, 1, 0, 0)}, {utc(2040, 10, 1, 0, 0), utc(2041, 4, 1, 0, 0)}}
	if testing.Short() {
		ranges = ranges[1:]
	}
	for _, r := range ranges {
		testNextProperties(t, r[0], r[1])
	}
}

func testNextProperties(t *testing.T, from, to time.Time) {
	for _, zone := range propZones {
		loc := mustLoc(t, zone)
		wins := offsetChanges(loc, from, to)
		for _, expr := range propCrons {
			c := mustCron(t, expr)
			var got []time.Time // fires inside wins
			n := 0
			prev := from
			for {
				f := c.Next(prev, loc)
				if !f.After(prev) {
					t.Fatalf("%s in %s: Next(%v) = %v, not after", expr, zone, prev, f)
				}
				if !f.Before(to) {
					break
				}
				n++
				switch {
				case c.hourStar:
					_, o1 := prev.In(loc).Zone()
					_, o2 := f.In(loc).Zone()
					if o1 == o2 && !wallMatches(c, wallClock(f, loc)) {
						t.Fatalf("%s in %s: fire %v does not match its wall clock", expr, zone, f)
					}
				case inWindows(wins, f):
					got = append(got, f)
				case !wallMatches(c, wallClock(f, loc)):
					t.Fatalf("%s in %s: fire %v does not match its wall clock", expr, zone, f)
				}
				prev = f
			}
			if n == 0 {
				t.Fatalf("%s in %s: no fires", expr, zone)
			}
			if !c.hourStar {
				checkOracle(t, c, expr, loc, wins, got)
			}
		}
	}
}

// window is a stretch of time around an offset change, with the wall clock of each minute.
type window struct {
	a, b  time.Time
	hw    int64   // the highest wall time shown in the two days before a
	walls []int64 // walls[i] is the wall time at a + i minutes
}

// offsetChanges returns a window around each change of loc's offset between from and to.
func offsetChanges(loc *time.Location, from, to time.Time) []window {
	var wins []window
	for x := from; x.Before(to); {
		_, end := x.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(to) {
			break
		}
		if !end.After(x) { // see TestResolve
			x = x.Add(24 * time.Hour)
			continue
		}
		x = end
		_, o1 := end.Add(-time.Second).In(loc).Zone()
		if _, o2 := end.In(loc).Zone(); o1 == o2 {
			continue // a period boundary Go reports without a change
		}
		w := window{a: maxTime(end.Add(-30*time.Hour).Truncate(time.Minute), from.Add(time.Minute)), b: minTime(end.Add(30*time.Hour), to)}
		w.hw = wallClock(w.a.Add(-time.Minute), loc)
		for u := w.a.Add(-48 * time.Hour); u.Before(w.a); u = u.Add(time.Minute) {
			w.hw = max(w.hw, wallClock(u, loc))
		}
		for u := w.a; u.Before(w.b); u = u.Add(time.Minute) {
			w.walls = append(w.walls, wallClock(u, loc))
		}
		wins = append(wins, w)
	}
	return wins
}

func inWindows(wins []window, f time.Time) bool {
	for _, w := range wins {
		if !f.Before(w.a) && f.Before(w.b) {
			return true
		}
	}
	return false
}

// checkOracle compares wall-clock fire times around each offset change (got holds the fires in
// wins) with brute force: an instant u fires when some matching wall minute lies above every
// wall time shown before u and at or below u's wall time.
func checkOracle(t *testing.T, c *Cron, expr string, loc *time.Location, wins []window, got []time.Time) {
	t.Helper()
	for _, w := range wins {
		var want []time.Time
		hw := w.hw
		for i, ws := range w.walls {
			for n := (hw/60 + 1) * 60; n <= ws; n += 60 {
				if wallMatches(c, n) {
					want = append(want, w.a.Add(time.Duration(i)*time.Minute).In(loc))
					break
				}
			}
			hw = max(hw, ws)
		}
		var have []time.Time
		for _, f := range got {
			if !f.Before(w.a) && f.Before(w.b) {
				have = append(have, f)
			}
		}
		if fmt.Sprint(have) != fmt.Sprint(want) {
			t.Fatalf("%s in %s around %v:\n got %v\nwant %v", expr, loc, w.b.Add(-30*time.Hour), have, want)
		}
	}
}
