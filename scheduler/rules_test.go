package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// counts builds upstream counts from states, one letter each: s success, f failed,
// u upstream_failed, k skipped, . not finished.
func counts(states string) UpstreamCounts {
	c := UpstreamCounts{Total: len(states)}
	for _, r := range states {
		switch r {
		case 's':
			c.Success++
		case 'f':
			c.Failed++
		case 'u':
			c.UpstreamFailed++
		case 'k':
			c.Skipped++
		}
		if r != '.' {
			c.Done++
		}
	}
	return c
}

func TestEvaluateEveryRuleAgainstEveryMix(t *testing.T) {
	// Expected decision per rule for each mix of two or three upstream states, as Airflow's
	// trigger_rule_dep decides them: W wait, R ready, K skip, U upstream_failed.
	mixes := []string{"..", "s.", "f.", "u.", "k.", "ss", "sf", "su", "sk", "ff", "fu", "fk", "uu", "uk", "kk", "ssk", "kkk", "sss"}
	want := map[string]string{
		//                                   ..  s.  f.  u.  k.  ss  sf  su  sk  ff  fu  fk  uu  uk  kk  ssk kkk sss
		AllSuccess:              "W W U U K R U U K U U U U U K K K R",
		AllFailed:               "W K W W K K K K K R R K R K K K K K",
		AllDone:                 "W W W W W R R R R R R R R R R R R R",
		AllSkipped:              "W K K K W K K K K K K K K K R K R K",
		OneSuccess:              "W R W W W R R R R U U U U U K R K R",
		OneFailed:               "W W R R W K R R K R R R R R K K K K",
		OneDone:                 "W R R W W R R R R R R R K K K R K R",
		NoneFailed:              "W W U U W R U U R U U U U U R R R R",
		NoneFailedMinOneSuccess: "W W U U W R U U R U U U U U K R K R",
		NoneSkipped:             "W W W W K R R R K R R K R K K K K R",
		Always:                  "R R R R R R R R R R R R R R R R R R",
	}
	letter := map[Decision]string{Wait: "W", Ready: "R", Skip: "K", FailUpstream: "U"}
	for rule, row := range want {
		exp := splitFields(row)
		if len(exp) != len(mixes) {
			t.Fatalf("%s: %d expectations for %d mixes", rule, len(exp), len(mixes))
		}
		for i, mix := range mixes {
			got, err := Evaluate(rule, counts(mix))
			if err != nil {
				t.Fatal(err)
			}
			if letter[got] != exp[i] {
				t.Errorf("%s with upstream %q = %s; want %s", rule, mix, got, exp[i])
			}
		}
	}
}

func splitFields(s string) []string {
	var out []string
	for _, f := range []byte(s) {
		if f != ' ' {
			out = append(out, string(f))
		}
	}
	return out
}

func TestEvaluateNoUpstreamIsReadyAndUnknownRuleErrs(t *testing.T) {
	if d, _ := Evaluate(AllSuccess, UpstreamCounts{}); d != Ready {
		t.Fatalf("a root task = %s; want ready", d)
	}
	if _, err := Evaluate("all_sucess", counts("s")); err == nil {
		t.Fatal("unknown rule accepted")
	}
}

func TestRetryDelay(t *testing.T) {
	cases := []struct {
		p    RetryPolicy
		n    int
		want string
	}{
		{RetryPolicy{Retries: 3, Delay: 5 * 60e9}, 1, "5m0s"},
		{RetryPolicy{Retries: 3, Delay: 5 * 60e9}, 3, "5m0s"},
		{RetryPolicy{Retries: 5, Delay: 60e9, Exponential: true}, 1, "1m0s"},
		{RetryPolicy{Retries: 5, Delay: 60e9, Exponential: true}, 2, "2m0s"},
		{RetryPolicy{Retries: 5, Delay: 60e9, Exponential: true}, 4, "8m0s"},
		{RetryPolicy{Retries: 9, Delay: 60e9, Exponential: true, MaxRetryDelay: 10 * 60e9}, 8, "10m0s"},
		{RetryPolicy{Retries: 99, Delay: 60e9, Exponential: true}, 90, fmt.Sprint(RetryPolicy{Delay: 60e9, Exponential: true}.DelayAfter(90))},
	}
	for _, c := range cases {
		if got := c.p.DelayAfter(c.n).String(); got != c.want {
			t.Errorf("%+v after try %d = %s; want %s", c.p, c.n, got, c.want)
		}
	}
	if d := (RetryPolicy{Delay: 60e9, Exponential: true}).DelayAfter(200); d <= 0 {
		t.Fatalf("huge try number overflowed to %s", d)
	}
	p := RetryPolicy{Retries: 2}
	if !p.ShouldRetry(1) || !p.ShouldRetry(2) || p.ShouldRetry(3) {
		t.Fatal("retries: 2 must give tries 1..3")
	}
}

func TestRunIDs(t *testing.T) {
	at := mustTime("2025-01-01T09:05:00+09:00")
	if got := RunID(RunScheduled, at); got != "scheduled__2025-01-01T00:05:00Z" {
		t.Fatalf("scheduled run id %s", got)
	}
	if got := RunID(RunManual, at.Add(123456789)); got != "manual__2025-01-01T00:05:00.123456Z" {
		t.Fatalf("manual run id %s", got)
	}
	if d, r, ok := SplitRunRef("etl/scheduled__2025-01-01T00:05:00Z"); !ok || d != "etl" || r != "scheduled__2025-01-01T00:05:00Z" {
		t.Fatal("split run ref")
	}
	if _, _, ok := SplitRunRef("scheduled__x"); ok {
		t.Fatal("bare run id split")
	}
}

func TestInstanceLessFollowsTheFileThenTheIndex(t *testing.T) {
	pos := map[string]int{"extract": 0, "load": 1, "report": 2}
	ids := []string{"report", "load[10]", "zzz_gone", "load[2]", "extract", "load", "aaa_gone"}
	sort.SliceStable(ids, func(i, j int) bool { return InstanceLess(pos, ids[i], ids[j]) })
	want := []string{"extract", "load", "load[2]", "load[10]", "report", "aaa_gone", "zzz_gone"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("order = %v; want %v", ids, want)
	}
}
