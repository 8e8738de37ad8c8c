package schedule

import (
	"testing"
	"time"
)

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{
		"* * * * *", "0 0 * * *", "30 2 * * *", "*/15 9-17 * * MON-FRI", "0 0 13 * 5", "0 0 */2 * 5",
		"5/10 1-23/3 2,4-6 jan-mar/2 sun,7", "0 0 29 2 */3", "0 0 30 2 *", "@daily", "@HOURLY", "@foo",
		"61 * * * *", "1,,2 * * * *", "*/0 * * * *", "5-1 * * * *", "0 0 L * *", "0 0 ? * 5#3", "",
		" \t0\t0 1 1 *  ", "* * * *", "-1 * * * *", "1-2-3 * * * *", "*/99999999999999999999 * * * *",
	} {
		f.Add(s)
	}
	locs := []*time.Location{time.UTC}
	for _, name := range []string{"America/New_York", "Australia/Lord_Howe", "Europe/Berlin"} {
		if loc, err := time.LoadLocation(name); err == nil {
			locs = append(locs, loc)
		}
	}
	from := []time.Time{
		time.Date(2025, 3, 9, 6, 59, 30, 0, time.UTC),  // New York just before the gap
		time.Date(2025, 11, 2, 6, 30, 0, 0, time.UTC),  // New York in the repeated hour
		time.Date(2025, 10, 4, 15, 29, 0, 0, time.UTC), // Lord Howe just before the gap
	}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := ParseCron(expr)
		if err != nil {
			if _, ok := err.(*CronError); !ok {
				t.Fatalf("ParseCron(%q) error %T, want *CronError", expr, err)
			}
			return
		}
		c2, err := ParseCron(c.String())
		if err != nil {
			t.Fatalf("ParseCron(%q).String() = %q does not parse: %v", expr, c.String(), err)
		}
		if *c2 != *c {
			t.Fatalf("ParseCron(%q) = %+v, reparsed %+v", expr, *c, *c2)
		}
		for _, loc := range locs {
			for _, a := range from {
				n := c.Next(a, loc)
				if !n.IsZero() && !n.After(a) {
					t.Fatalf("%q in %v: Next(%v) = %v, not after", expr, loc, a, n)
				}
				if !n.IsZero() {
					if n2 := c.Next(n, loc); !n2.IsZero() && !n2.After(n) {
						t.Fatalf("%q in %v: Next(%v) = %v, not after", expr, loc, n, n2)
					}
				}
			}
		}
	})
}

func BenchmarkNext(b *testing.B) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		b.Fatal(err)
	}
	for _, expr := range []string{"30 2 * * *", "@hourly", "0 9 * * MON-FRI", "0 0 1 1 *"} {
		c, err := ParseCron(expr)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(expr, func(b *testing.B) {
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, ny)
			t := start
			for b.Loop() {
				if t = c.Next(t, ny); t.Year() > 2035 {
					t = start
				}
			}
		})
	}
}

func BenchmarkLatestComplete(b *testing.B) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		b.Fatal(err)
	}
	for _, expr := range []string{"@hourly", "30 2 * * *"} {
		c, err := ParseCron(expr)
		if err != nil {
			b.Fatal(err)
		}
		tt := Timetable{Cron: c, Loc: ny, Start: time.Date(2020, 1, 1, 0, 0, 0, 0, ny)}
		now := time.Date(2025, 6, 1, 12, 34, 56, 0, ny)
		b.Run(expr, func(b *testing.B) {
			for b.Loop() {
				tt.LatestComplete(now)
			}
		})
	}
}
