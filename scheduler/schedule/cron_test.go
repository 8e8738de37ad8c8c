package schedule

import (
	"errors"
	"strings"
	"testing"
)

func set(vals ...int) uint64 {
	var s uint64
	for _, v := range vals {
		s |= 1 << v
	}
	return s
}

func span(lo, hi, step int) uint64 {
	var s uint64
	for v := lo; v <= hi; v += step {
		s |= 1 << v
	}
	return s
}

var (
	allMin   = span(0, 59, 1)
	allHour  = span(0, 23, 1)
	allDom   = span(1, 31, 1)
	allMonth = span(1, 12, 1)
	allDow   = span(0, 6, 1)
)

func TestParseCron(t *testing.T) {
	tests := []struct {
		expr string
		want Cron // text is checked separately
	}{
		{"* * * * *", Cron{allMin, allHour, allDom, allMonth, allDow, true, true, true, ""}},
		{"  5\t 4  * * *  ", Cron{set(5), set(4), allDom, allMonth, allDow, true, true, false, ""}},
		{"0,15,30 1-3 1,15 1-6/2 1-5", Cron{set(0, 15, 30), set(1, 2, 3), set(1, 15), set(1, 3, 5), span(1, 5, 1), false, false, false, ""}},
		{"*/15 */1 * * *", Cron{set(0, 15, 30, 45), allHour, allDom, allMonth, allDow, true, true, true, ""}},
		{"0 */2 * * *", Cron{set(0), span(0, 23, 2), allDom, allMonth, allDow, true, true, false, ""}},
		{"10/20 5/6 3/10 11/1 5/1", Cron{set(10, 30, 50), set(5, 11, 17, 23), set(3, 13, 23), set(11, 12), set(5, 6), false, false, false, ""}},
		{"0-59/30 0-23/12 */10 * *", Cron{set(0, 30), set(0, 12), set(1, 11, 21, 31), allMonth, allDow, true, true, false, ""}},
		{"0 0-23 * * *", Cron{set(0), allHour, allDom, allMonth, allDow, true, true, false, ""}},
		{"0 0 * jan,Mar-MAY sun", Cron{set(0), set(0), allDom, set(1, 3, 4, 5), set(0), true, false, false, ""}},
		{"0 0 * * MON-FRI", Cron{set(0), set(0), allDom, allMonth, span(1, 5, 1), true, false, false, ""}},
		{"0 0 * * 7", Cron{set(0), set(0), allDom, allMonth, set(0), true, false, false, ""}},
		{"0 0 * * 5-7", Cron{set(0), set(0), allDom, allMonth, set(0, 5, 6), true, false, false, ""}},
		{"0 0 * * 0,7", Cron{set(0), set(0), allDom, allMonth, set(0), true, false, false, ""}},
		{"0 0 * * sat/1", Cron{set(0), set(0), allDom, allMonth, set(6), true, false, false, ""}},
		{"0 0 * * */2", Cron{set(0), set(0), allDom, allMonth, set(0, 2, 4, 6), true, true, false, ""}},
		{"0 0 */2 * 5", Cron{set(0), set(0), span(1, 31, 2), allMonth, set(5), true, false, false, ""}},
		{"0 0 13 * 5", Cron{set(0), set(0), set(13), allMonth, set(5), false, false, false, ""}},
		{"59 23 31 12 6", Cron{set(59), set(23), set(31), set(12), set(6), false, false, false, ""}},
		{"*/60 */24 */31 */12 */7", Cron{set(0), set(0), set(1), set(1), set(0), true, true, false, ""}},
		{"*,5 * * * *", Cron{allMin, allHour, allDom, allMonth, allDow, true, true, true, ""}},
		{"0 0 29 2 *", Cron{set(0), set(0), set(29), set(2), allDow, false, true, false, ""}},
		{"0 0 31 1,4 *", Cron{set(0), set(0), set(31), set(1, 4), allDow, false, true, false, ""}},
		{"0 0 31 4 1", Cron{set(0), set(0), set(31), set(4), set(1), false, false, false, ""}}, // OR: Mondays in April
		{"@hourly", Cron{set(0), allHour, allDom, allMonth, allDow, true, true, true, ""}},
		{"@daily", Cron{set(0), set(0), allDom, allMonth, allDow, true, true, false, ""}},
		{"@midnight", Cron{set(0), set(0), allDom, allMonth, allDow, true, true, false, ""}},
		{"@weekly", Cron{set(0), set(0), allDom, allMonth, set(0), true, false, false, ""}},
		{"@monthly", Cron{set(0), set(0), set(1), allMonth, allDow, false, true, false, ""}},
		{"@yearly", Cron{set(0), set(0), set(1), set(1), allDow, false, true, false, ""}},
		{"@annually", Cron{set(0), set(0), set(1), set(1), allDow, false, true, false, ""}},
		{" @Daily ", Cron{set(0), set(0), allDom, allMonth, allDow, true, true, false, ""}},
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", tt.expr, err)
			continue
		}
		got := *c
		got.text = ""
		if got != tt.want {
			t.Errorf("ParseCron(%q) = %+v, want %+v", tt.expr, got, tt.want)
		}
		if want := strings.TrimSpace(tt.expr); c.String() != want {
			t.Errorf("ParseCron(%q).String() = %q, want %q", tt.expr, c.String(), want)
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	tests := []struct {
		expr, field, value string
		msg                string // substring of Msg
	}{
		{"", "", "", "found 0 fields, expected 5"},
		{"* * * *", "", "", "found 4 fields, expected 5"},
		{"* * * * * *", "", "", "found 6 fields"},
		{"@reboot", "", "", "supported presets are @yearly"},
		{"@daily *", "", "", "unknown preset"},
		{"61 * * * *", "minute", "61", "value 61 out of range 0-59"},
		{"* 24 * * *", "hour", "24", "value 24 out of range 0-23"},
		{"* * 0 * *", "day of month", "0", "value 0 out of range 1-31"},
		{"* * 32 * *", "day of month", "32", "out of range 1-31"},
		{"* * * 13 *", "month", "13", "out of range 1-12"},
		{"* * * 0 *", "month", "0", "out of range 1-12"},
		{"* * * * 8", "day of week", "8", "out of range 0-7"},
		{"99999999999999999999 * * * *", "minute", "99999999999999999999", "out of range"},
		{"1,,2 * * * *", "minute", "1,,2", "empty item"},
		{",1 * * * *", "minute", ",1", "empty item"},
		{"1, * * * *", "minute", "1,", "empty item"},
		{"*/0 * * * *", "minute", "*/0", "step 0"},
		{"1-5/0 * * * *", "minute", "1-5/0", "step 0"},
		{"*/61 * * * *", "minute", "*/61", "larger than the field's 60 values"},
		{"*/ * * * *", "minute", "*/", "missing step"},
		{"*/x * * * *", "minute", "*/x", "not a number"},
		{"*/2/3 * * * *", "minute", "*/2/3", "not a number"},
		{"5-1 * * * *", "minute", "5-1", "reversed"},
		{"* * * * FRI-MON", "day of week", "FRI-MON", "reversed"},
		{"* * * DEC-JAN *", "month", "DEC-JAN", "reversed"},
		{"1-2-3 * * * *", "minute", "1-2-3", "more than one '-'"},
		{"-5 * * * *", "minute", "-5", "missing value"},
		{"5- * * * *", "minute", "5-", "missing value"},
		{"*-5 * * * *", "minute", "*-5", "'*' cannot be part of a range"},
		{"abc * * * *", "minute", "abc", "invalid value"},
		{"MON * * * *", "minute", "MON", "invalid value"},
		{"* * * FOO *", "month", "FOO", "JAN-DEC"},
		{"* * * * MONDAY", "day of week", "MONDAY", "SUN-SAT"},
		{"0 0 ? * *", "day of month", "?", "not supported"},
		{"0 0 * * 5#3", "day of week", "5#3", "not supported"},
		{"0 0 L * *", "day of month", "L", "not supported"},
		{"0 0 15W * *", "day of month", "15W", "not supported"},
		{"0 0 LW * *", "day of month", "LW", "not supported"},
		{"0 0 * * 5L", "day of week", "5L", "not supported"},
		{"0 0 30 2 *", "day of month", "30", "never matches"},
		{"0 0 31 2,4,6,9,11 *", "day of month", "31", "never matches"},
		{"0 0 30,31 FEB */2", "day of month", "30,31", "never matches"},
		{"1.5 * * * *", "minute", "1.5", "invalid value"},
		{"+1 * * * *", "minute", "+1", "invalid value"},
	}
	for _, tt := range tests {
		_, err := ParseCron(tt.expr)
		var ce *CronError
		if !errors.As(err, &ce) {
			t.Errorf("ParseCron(%q) error = %v, want a *CronError", tt.expr, err)
			continue
		}
		if ce.Expr != tt.expr || ce.Field != tt.field || ce.Value != tt.value || !strings.Contains(ce.Msg, tt.msg) {
			t.Errorf("ParseCron(%q) = %#v, want field %q value %q msg containing %q", tt.expr, *ce, tt.field, tt.value, tt.msg)
		}
		if tt.field != "" && !strings.Contains(err.Error(), tt.field+" field") {
			t.Errorf("ParseCron(%q).Error() = %q does not mention the field", tt.expr, err)
		}
	}
}

func TestCronErrorMessage(t *testing.T) {
	_, err := ParseCron("61 * * * *")
	want := `cron "61 * * * *": minute field "61": value 61 out of range 0-59`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
	_, err = ParseCron("* *")
	if err == nil || !strings.HasPrefix(err.Error(), `cron "* *": found 2 fields, expected 5`) || !strings.Contains(err.Error(), "@daily") {
		t.Fatalf("error = %v", err)
	}
}
