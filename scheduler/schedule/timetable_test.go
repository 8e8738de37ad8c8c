package schedule

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func kstTable(t *testing.T, expr string) (Timetable, *time.Location) {
	kst := mustLoc(t, "Asia/Seoul")
	return Timetable{Cron: mustCron(t, expr), Loc: kst, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, kst)}, kst
}

func checkIv(t *testing.T, what string, got Interval, ok bool, want Interval) {
	t.Helper()
	if !ok {
		t.Errorf("%s: ok = false, want %v", what, want)
		return
	}
	if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Errorf("%s = [%v, %v), want [%v, %v)", what, got.Start, got.End, want.Start, want.End)
	}
}

func checkNone(t *testing.T, what string, got Interval, ok bool) {
	t.Helper()
	if ok {
		t.Errorf("%s = [%v, %v), want none", what, got.Start, got.End)
	}
}

func TestFirstAndFollowing(t *testing.T) {
	tt, kst := kstTable(t, "5 0 * * *")
	day := func(d, h, m int) time.Time { return time.Date(2025, 1, d, h, m, 0, 0, kst) }
	first, ok := tt.First()
	checkIv(t, "First", first, ok, Interval{day(1, 0, 5), day(2, 0, 5)})
	if first.Start.Location() != kst || first.End.Location() != kst {
		t.Errorf("First is in %v, want Asia/Seoul", first.Start.Location())
	}
	iv, ok := tt.Following(first)
	checkIv(t, "Following", iv, ok, Interval{day(2, 0, 5), day(3, 0, 5)})

	tt.Start = day(1, 0, 5) // exactly on a fire time
	iv, ok = tt.First()
	checkIv(t, "First on a fire time", iv, ok, Interval{day(1, 0, 5), day(2, 0, 5)})
	tt.Start = day(1, 0, 5).Add(time.Nanosecond) // just after one
	iv, ok = tt.First()
	checkIv(t, "First just after a fire time", iv, ok, Interval{day(2, 0, 5), day(3, 0, 5)})

	// End: no interval starts after it; one starting exactly at End is allowed.
	tt.Start = day(1, 0, 0)
	end := day(3, 0, 5)
	tt.End = &end
	var got []Interval
	for iv, ok := tt.First(); ok; iv, ok = tt.Following(iv) {
		got = append(got, iv)
	}
	if len(got) != 3 || !got[2].Start.Equal(end) || !got[2].End.Equal(day(4, 0, 5)) {
		t.Errorf("intervals up to End = %v", got)
	}
	end = day(1, 0, 4)
	iv, ok = tt.First()
	checkNone(t, "First after End", iv, ok)

	iv, ok = Timetable{Loc: kst, Start: day(1, 0, 0)}.First()
	checkNone(t, "First of a manual DAG", iv, ok)
	iv, ok = Timetable{Cron: tt.Cron, Loc: kst}.First()
	checkNone(t, "First with no Start", iv, ok)
	iv, ok = Timetable{Loc: kst}.Following(first)
	checkNone(t, "Following of a manual DAG", iv, ok)
}

func TestLatestComplete(t *testing.T) {
	tt, kst := kstTable(t, "5 0 * * *")
	at := func(mo time.Month, d, h, m int) time.Time { return time.Date(2025, mo, d, h, m, 0, 0, kst) }

	iv, ok := tt.LatestComplete(at(1, 2, 0, 4))
	checkNone(t, "LatestComplete before the first end", iv, ok)
	iv, ok = tt.LatestComplete(at(1, 2, 0, 5)) // the first run is due
	checkIv(t, "LatestComplete at the first end", iv, ok, Interval{at(1, 1, 0, 5), at(1, 2, 0, 5)})
	iv, ok = tt.LatestComplete(at(6, 15, 12, 0))
	checkIv(t, "LatestComplete mid-year", iv, ok, Interval{at(6, 14, 0, 5), at(6, 15, 0, 5)})
	iv, ok = tt.LatestComplete(at(6, 15, 0, 5).Add(-time.Nanosecond))
	checkIv(t, "LatestComplete just before a fire", iv, ok, Interval{at(6, 13, 0, 5), at(6, 14, 0, 5)})

	end := at(1, 3, 0, 5)
	tt.End = &end
	iv, ok = tt.LatestComplete(at(6, 15, 12, 0))
	checkIv(t, "LatestComplete after End", iv, ok, Interval{at(1, 3, 0, 5), at(1, 4, 0, 5)})
	iv, ok = tt.LatestComplete(at(1, 4, 0, 4))
	checkIv(t, "LatestComplete near End", iv, ok, Interval{at(1, 2, 0, 5), at(1, 3, 0, 5)})

	// Far from Start, cheap anyway; and with no Start, unbounded.
	berlin := mustLoc(t, "Europe/Berlin")
	hourly := Timetable{Cron: mustCron(t, "@hourly"), Loc: berlin, Start: utc(2000, 1, 1, 0, 0)}
	for _, tb := range []Timetable{hourly, {Cron: hourly.Cron, Loc: berlin}} {
		iv, ok = tb.LatestComplete(utc(2025, 10, 26, 1, 30))
		checkIv(t, "LatestComplete hourly", iv, ok, Interval{utc(2025, 10, 26, 0, 0), utc(2025, 10, 26, 1, 0)})
	}
	yearly := Timetable{Cron: mustCron(t, "@yearly"), Start: utc(1990, 6, 1, 0, 0)}
	iv, ok = yearly.LatestComplete(utc(2025, 6, 1, 0, 0))
	checkIv(t, "LatestComplete yearly", iv, ok, Interval{utc(2024, 1, 1, 0, 0), utc(2025, 1, 1, 0, 0)})
	iv, ok = yearly.LatestComplete(utc(1992, 1, 1, 0, 0))
	checkIv(t, "LatestComplete yearly, first", iv, ok, Interval{utc(1991, 1, 1, 0, 0), utc(1992, 1, 1, 0, 0)})
	iv, ok = yearly.LatestComplete(utc(1991, 12, 31, 0, 0))
	checkNone(t, "LatestComplete yearly, none yet", iv, ok)

	// Samoa skipped 2011-12-30, so the hour-star rule's first jump (from May 2011 to Thursday
	// 2012-05-17) lands a day late, and the first interval is [2012-05-18 00:00, 2014-05-01).
	// Searching back from now would find 2012-05-17 23:58; LatestComplete must not return it.
	apia := Timetable{Cron: mustCron(t, "* * */16 5 4"), Loc: mustLoc(t, "Pacific/Apia"), Start: utc(2011, 5, 15, 8, 0)}
	iv, ok = apia.First()
	checkIv(t, "First in Apia", iv, ok, Interval{utc(2012, 5, 17, 11, 0), utc(2014, 4, 30, 11, 0)})
	iv, ok = apia.LatestComplete(utc(2013, 11, 25, 0, 0))
	checkNone(t, "LatestComplete in Apia", iv, ok)
	iv, ok = apia.LatestComplete(utc(2014, 4, 30, 11, 1))
	checkIv(t, "LatestComplete in Apia", iv, ok, Interval{utc(2014, 4, 30, 11, 0), utc(2014, 4, 30, 11, 1)})

	iv, ok = Timetable{Start: utc(2025, 1, 1, 0, 0)}.LatestComplete(utc(2026, 1, 1, 0, 0))
	checkNone(t, "LatestComplete of a manual DAG", iv, ok)
}

func TestDueAfter(t *testing.T) {
	tt, kst := kstTable(t, "5 0 * * *")
	at := func(d, h, m int) time.Time { return time.Date(2025, 1, d, h, m, 0, 0, kst) }
	check := func(what string, got []Interval, starts ...int) {
		t.Helper()
		if len(got) != len(starts) {
			t.Errorf("%s: %d intervals %v, want %d", what, len(got), got, len(starts))
			return
		}
		for i, d := range starts {
			if !got[i].Start.Equal(at(d, 0, 5)) || !got[i].End.Equal(at(d+1, 0, 5)) {
				t.Errorf("%s[%d] = %v, want start Jan %d", what, i, got[i], d)
			}
		}
	}
	check("before Start", tt.DueAfter(at(1, 0, 0).AddDate(-1, 0, 0), 2), 1, 2)
	check("inside the first", tt.DueAfter(at(1, 12, 0), 3), 1, 2, 3)
	check("at a fire time", tt.DueAfter(at(2, 0, 5), 2), 2, 3)
	check("just before a fire time", tt.DueAfter(at(2, 0, 5).Add(-1), 2), 1, 2)
	check("n = 0", tt.DueAfter(at(2, 0, 5), 0))
	end := at(4, 0, 5)
	tt.End = &end
	check("up to End", tt.DueAfter(at(2, 12, 0), 10), 2, 3, 4)
	check("after End", tt.DueAfter(at(9, 0, 0), 10))
	tt.End = nil
	tt.Start = time.Time{}
	check("no Start", tt.DueAfter(at(9, 1, 0), 2), 9, 10)
	if got := (Timetable{Loc: kst}).DueAfter(at(1, 0, 0), 3); got != nil {
		t.Errorf("manual DueAfter = %v", got)
	}
}

func TestForDate(t *testing.T) {
	tt, kst := kstTable(t, "5 0 * * *")
	iv, ok := tt.ForDate(2025, time.January, 1)
	checkIv(t, "ForDate Seoul", iv, ok, Interval{time.Date(2025, 1, 1, 0, 5, 0, 0, kst), time.Date(2025, 1, 2, 0, 5, 0, 0, kst)})
	iv, ok = tt.ForDate(2024, time.June, 1) // before Start: ForDate ignores Start
	checkIv(t, "ForDate before Start", iv, ok, Interval{time.Date(2024, 6, 1, 0, 5, 0, 0, kst), time.Date(2024, 6, 2, 0, 5, 0, 0, kst)})
	iv, ok = tt.ForDate(2025, time.February, 30)
	checkNone(t, "ForDate Feb 30", iv, ok)
	iv, ok = tt.ForDate(2025, 13, 1)
	checkNone(t, "ForDate month 13", iv, ok)

	iv, ok = Timetable{Cron: mustCron(t, "0 9 * * MON"), Loc: kst}.ForDate(2025, time.June, 3) // a Tuesday
	checkNone(t, "ForDate on a day without fires", iv, ok)
	iv, ok = Timetable{Cron: mustCron(t, "0 9,17 * * MON"), Loc: kst}.ForDate(2025, time.June, 2)
	checkIv(t, "ForDate twice a day", iv, ok, Interval{time.Date(2025, 6, 2, 9, 0, 0, 0, kst), time.Date(2025, 6, 2, 17, 0, 0, 0, kst)})

	ny := mustLoc(t, "America/New_York")
	iv, ok = Timetable{Cron: mustCron(t, "30 2 * * *"), Loc: ny}.ForDate(2025, time.March, 9)
	checkIv(t, "ForDate in the gap", iv, ok, Interval{utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30)})
	iv, ok = Timetable{Cron: mustCron(t, "@hourly"), Loc: ny}.ForDate(2025, time.November, 2)
	checkIv(t, "ForDate hourly", iv, ok, Interval{utc(2025, 11, 2, 4, 0), utc(2025, 11, 2, 5, 0)})

	iv, ok = Timetable{Loc: kst}.ForDate(2025, time.January, 1)
	mid := time.Date(2025, 1, 1, 0, 0, 0, 0, kst)
	checkIv(t, "ForDate manual", iv, ok, Interval{mid, mid})
	// Havana's clocks jumped from 00:00 to 01:00 on 2025-03-09, so that day starts at 01:00.
	havana := mustLoc(t, "America/Havana")
	iv, ok = Timetable{Loc: havana}.ForDate(2025, time.March, 9)
	checkIv(t, "ForDate manual, midnight in a gap", iv, ok, Interval{utc(2025, 3, 9, 5, 0), utc(2025, 3, 9, 5, 0)})
	if iv.Start.Format("15:04") != "01:00" {
		t.Errorf("Havana day starts at %v", iv.Start)
	}
	iv, ok = Timetable{Cron: mustCron(t, "@daily"), Loc: havana}.ForDate(2025, time.March, 9)
	checkIv(t, "ForDate daily, midnight in a gap", iv, ok, Interval{utc(2025, 3, 9, 5, 0), utc(2025, 3, 10, 4, 0)})
}

func TestInfer(t *testing.T) {
	tt, kst := kstTable(t, "5 0 * * *")
	at := func(d, h, m int) time.Time { return time.Date(2025, 1, d, h, m, 0, 0, kst) }
	want := Interval{at(4, 0, 5), at(5, 0, 5)}
	if got := tt.Infer(at(5, 10, 0)); got != want {
		t.Errorf("Infer mid-day = %v, want %v", got, want)
	}
	if got := tt.Infer(at(5, 0, 5)); got != want {
		t.Errorf("Infer on a fire time = %v, want %v", got, want)
	}
	T := at(1, 12, 0)
	if got := tt.Infer(T); got != (Interval{T, T}) {
		t.Errorf("Infer before any complete interval = %v, want [T, T]", got)
	}
	if got := (Timetable{Loc: kst}).Infer(T.UTC()); got != (Interval{T, T}) {
		t.Errorf("manual Infer = %v, want [T, T] in Loc", got)
	}
}

// TestIntervalProperties walks the intervals of several schedules and zones: they are contiguous
// and increasing, and LatestComplete and DueAfter agree with the walk at and between fire times.
func TestIntervalProperties(t *testing.T) {
	crons := []string{"0 * * * *", "*/30 * * * *", "30 2 * * *", "0 */2 * * *", "5 0 * * *", "30 1 * * 1-5", "0 0 1 * *"}
	for _, zone := range []string{"UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Seoul", "Pacific/Chatham"} {
		loc := mustLoc(t, zone)
		for _, expr := range crons {
			tt := Timetable{Cron: mustCron(t, expr), Loc: loc, Start: time.Date(2024, 10, 1, 0, 0, 0, 0, loc)}
			stop := time.Date(2025, 12, 1, 0, 0, 0, 0, loc)
			var ivs []Interval
			for iv, ok := tt.First(); ok && iv.Start.Before(stop); iv, ok = tt.Following(iv) {
				if !iv.End.After(iv.Start) {
					t.Fatalf("%s in %s: empty interval %v", expr, zone, iv)
				}
				if n := len(ivs); n > 0 && !ivs[n-1].End.Equal(iv.Start) {
					t.Fatalf("%s in %s: %v does not follow %v", expr, zone, iv, ivs[n-1])
				}
				ivs = append(ivs, iv)
			}
			step := max(1, len(ivs)/300)
			for i := 0; i+1 < len(ivs); i += step {
				iv, next := ivs[i], ivs[i+1]
				for _, now := range []time.Time{next.Start, next.Start.Add(next.End.Sub(next.Start) / 2), next.End.Add(-1)} {
					got, ok := tt.LatestComplete(now)
					if !ok || got != iv {
						t.Fatalf("%s in %s: LatestComplete(%v) = %v %v, want %v", expr, zone, now, got, ok, iv)
					}
					due := tt.DueAfter(now, 2)
					if len(due) != 2 || due[0] != next || (i+2 < len(ivs) && due[1] != ivs[i+2]) {
						t.Fatalf("%s in %s: DueAfter(%v) = %v, want %v...", expr, zone, now, due, next)
					}
				}
			}
		}
	}
}

// TestTimetableRandom checks LatestComplete, DueAfter and Following against each other for random
// schedules, zones, starts, ends and times.
func TestTimetableRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []string{"UTC", "America/New_York", "Australia/Lord_Howe", "Europe/Berlin", "Pacific/Apia", "America/Sao_Paulo", "Asia/Gaza", "Pacific/Chatham"}
	var locs []*time.Location
	for _, z := range zones {
		locs = append(locs, mustLoc(t, z))
	}
	item := func(lo, hi int) string {
		switch r.IntN(4) {
		case 0:
			return "*"
		case 1:
			return fmt.Sprint(lo + r.IntN(hi-lo+1))
		case 2:
			a := lo + r.IntN(hi-lo+1)
			return fmt.Sprintf("%d-%d", a, a+r.IntN(hi-a+1))
		default:
			return fmt.Sprintf("*/%d", 1+r.IntN(hi-lo+1))
		}
	}
	errs := 0
	for i := 0; i < 1500 && errs < 10; i++ {
		expr := fmt.Sprintf("%s %s %s %s %s", item(0, 59), item(0, 23), item(1, 31), item(1, 12), item(0, 6))
		c, err := ParseCron(expr)
		if err != nil {
			continue
		}
		loc := locs[r.IntN(len(locs))]
		start := time.Unix(r.Int64N(int64(20*365*86400))+int64(40*365*86400), 0)
		tt := Timetable{Cron: c, Loc: loc, Start: start}
		if r.IntN(4) == 0 {
			e := start.Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
			tt.End = &e
		}
		now := start.Add(time.Duration(r.Int64N(int64(5 * 365 * 24 * time.Hour))))
		iv, ok := tt.LatestComplete(now)
		due := tt.DueAfter(now, 3)
		first, fok := tt.First()
		for _, d := range due {
			if !d.End.After(now) || d.Start.Before(first.Start) {
				errs++
				t.Errorf("%q %v start %v: DueAfter(%v) returned %v", expr, loc, start, now, d)
			}
		}
		if ok {
			f, more := tt.Following(iv)
			switch {
			case iv.End.After(now), !c.Next(iv.Start, loc).Equal(iv.End):
			case !fok, iv.Start.Before(first.Start), tt.End != nil && iv.Start.After(*tt.End):
			case more && !f.End.After(now): // the following one is complete too
			default:
				if more && (len(due) == 0 || due[0] != f) {
					errs++
					t.Errorf("%q %v: DueAfter %v, LatestComplete %v", expr, loc, due, iv)
				}
				continue
			}
			errs++
			t.Errorf("%q %v start %v now %v: LatestComplete %v", expr, loc, start, now, iv)
		} else if fok && !first.End.After(now) {
			errs++
			t.Errorf("%q %v start %v now %v: no LatestComplete but first %v", expr, loc, start, now, first)
		}
	}
}
