package schedule

import (
	"fmt"
	"strconv"
	"strings"
)

// Cron is a parsed 5-field cron expression or preset. Use ParseCron to build one; the zero value
// never fires. A *Cron is immutable and safe for concurrent use.
type Cron struct {
	// Bit v of a set is on when value v matches. Day of week is folded to 0-6 (7 becomes 0).
	minute, hour, dom, month, dow uint64

	// domStar and dowStar report whether the day-of-month and day-of-week fields start with
	// "*": the two combine with AND unless both are restricted, as in Vixie cron.
	domStar, dowStar bool
	// hourStar reports whether the hour field is "*" or "*/1"; it selects the DST rule in Next.
	hourStar bool

	text string
}

// CronError is the error ParseCron returns. Field names the offending field ("minute", "hour",
// "day of month", "month", "day of week") or is empty when the expression as a whole is wrong,
// and Value is that field's text, so a DAG validator can point at it and show Msg as the hint.
type CronError struct {
	Expr  string // the expression as given to ParseCron
	Field string // "minute", "hour", "day of month", "month", "day of week", or ""
	Value string // the offending field's text; empty when Field is empty
	Msg   string // what is wrong, in words
}

// Error returns a message such as `cron "61 * * * *": minute field "61": value 61 out of range 0-59`.
func (e *CronError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("cron %q: %s", e.Expr, e.Msg)
	}
	return fmt.Sprintf("cron %q: %s field %q: %s", e.Expr, e.Field, e.Value, e.Msg)
}

// presets maps each supported @ name to its 5-field expansion.
var presets = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

const presetList = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"

// fieldSpec describes one of the five fields.
type fieldSpec struct {
	name     string
	min, max int      // the range "*" and "a/n" cover
	maxValue int      // the largest value accepted (7 for day of week, otherwise max)
	names    []string // 3-letter names; names[i] means min+i
}

var fieldSpecs = [5]fieldSpec{
	{name: "minute", min: 0, max: 59, maxValue: 59},
	{name: "hour", min: 0, max: 23, maxValue: 23},
	{name: "day of month", min: 1, max: 31, maxValue: 31},
	{name: "month", min: 1, max: 12, maxValue: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day of week", min: 0, max: 6, maxValue: 7,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
}

// ParseCron parses a cron expression: five fields separated by spaces or tabs (minute, hour,
// day of month, month, day of week) or one of the presets @yearly, @annually, @monthly,
// @weekly, @daily, @midnight and @hourly (case-insensitive).
//
// Each field is a comma list of items; an item is "*", a number, a range "a-b", or one of those
// followed by a step "/n" ("a/n" means a through the field's maximum). Months accept JAN-DEC
// and days of week SUN-SAT, case-insensitive, also in ranges; day of week 7 is Sunday like 0.
// The Quartz extensions ?, L, W and # are not supported. Errors are *CronError.
func ParseCron(expr string) (*Cron, error) {
	text := strings.TrimSpace(expr)
	if strings.HasPrefix(text, "@") {
		exp, ok := presets[strings.ToLower(text)]
		if !ok {
			return nil, &CronError{Expr: expr, Msg: fmt.Sprintf("unknown preset %q; supported presets are %s", text, presetList)}
		}
		c, err := parseFields(expr, exp)
		if err != nil {
			return nil, err // not reached: every preset parses
		}
		c.text = text
		return c, nil
	}
	c, err := parseFields(expr, text)
	if err != nil {
		return nil, err
	}
	c.text = text
	return c, nil
}

// String returns the expression as it was parsed, with surrounding whitespace removed. Parsing
// it again gives an identical Cron.
func (c *Cron) String() string { return c.text }

func parseFields(expr, text string) (*Cron, error) {
	parts := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(parts) != 5 {
		return nil, &CronError{Expr: expr, Msg: fmt.Sprintf(
			"found %d fields, expected 5 (minute hour day-of-month month day-of-week) or a preset (%s)",
			len(parts), presetList)}
	}
	var sets [5]uint64
	for i, p := range parts {
		set, msg := parseField(p, &fieldSpecs[i])
		if msg != "" {
			return nil, &CronError{Expr: expr, Field: fieldSpecs[i].name, Value: p, Msg: msg}
		}
		sets[i] = set
	}
	c := &Cron{
		minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar:  strings.HasPrefix(parts[2], "*"),
		dowStar:  strings.HasPrefix(parts[4], "*"),
		hourStar: parts[1] == "*" || parts[1] == "*/1",
	}
	if (c.domStar || c.dowStar) && !c.someDayExists() {
		return nil, &CronError{Expr: expr, Field: "day of month", Value: parts[2], Msg: fmt.Sprintf(
			"never matches: no selected day exists in month field %q (February has at most 29 days; April, June, September and November have 30)",
			parts[3])}
	}
	return c, nil
}

// daysInMonthMax[m] is the most days month m can have (February 29 in leap years).
var daysInMonthMax = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// someDayExists reports whether some selected day of month exists in some selected month.
// It matters only when day of month and day of week combine with AND.
func (c *Cron) someDayExists() bool {
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) != 0 && c.dom&(uint64(1)<<(daysInMonthMax[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

// parseField returns the set a field selects, or a non-empty message saying what is wrong.
func parseField(text string, f *fieldSpec) (uint64, string) {
	if strings.ContainsAny(text, "?#") {
		return 0, "'?' and '#' are not supported; use '*' for any value, and a plain day of week instead of '#'"
	}
	var set uint64
	for item := range strings.SplitSeq(text, ",") {
		if item == "" {
			return 0, "empty item in comma list"
		}
		s, msg := parseItem(item, f)
		if msg != "" {
			return 0, msg
		}
		set |= s
	}
	if f.maxValue == 7 && set&(1<<7) != 0 { // day of week 7 is Sunday
		set = set&^(1<<7) | 1
	}
	return set, ""
}

func parseItem(item string, f *fieldSpec) (uint64, string) {
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		if stepText == "" {
			return 0, fmt.Sprintf("missing step after '/' in %q", item)
		}
		if !isDigits(stepText) {
			return 0, fmt.Sprintf("step %q in %q is not a number", stepText, item)
		}
		n, err := strconv.Atoi(stepText)
		span := f.max - f.min + 1
		switch {
		case err != nil || n > span:
			return 0, fmt.Sprintf("step %s in %q is larger than the field's %d values", stepText, item, span)
		case n == 0:
			return 0, fmt.Sprintf("step 0 in %q; the step must be at least 1", item)
		}
		step = n
	}
	var lo, hi int
	switch {
	case rng == "*":
		lo, hi = f.min, f.max
	case strings.Count(rng, "-") > 1:
		return 0, fmt.Sprintf("%q has more than one '-'; negative values are not allowed", rng)
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var msg string
		if lo, msg = parseValue(a, f); msg != "" {
			return 0, msg
		}
		if hi, msg = parseValue(b, f); msg != "" {
			return 0, msg
		}
		if lo > hi {
			return 0, fmt.Sprintf("range %q is reversed (%d > %d); ranges cannot wrap around", rng, lo, hi)
		}
	default:
		var msg string
		if lo, msg = parseValue(rng, f); msg != "" {
			return 0, msg
		}
		hi = lo
		if hasStep {
			hi = max(f.max, lo) // "a/n": a through the field's maximum
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << v
	}
	return set, ""
}

// parseValue reads one number or name and checks its range.
func parseValue(s string, f *fieldSpec) (int, string) {
	if s == "" {
		return 0, "missing value (a '-' needs a number on each side)"
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n < f.min || n > f.maxValue {
			return 0, fmt.Sprintf("value %s out of range %d-%d", s, f.min, f.maxValue)
		}
		return n, ""
	}
	up := strings.ToUpper(s)
	for i, name := range f.names {
		if up == name {
			return f.min + i, ""
		}
	}
	switch {
	case up == "L" || up == "LW" || strings.HasSuffix(up, "L") && isDigits(up[:len(up)-1]) ||
		strings.HasSuffix(up, "W") && isDigits(up[:len(up)-1]):
		return 0, fmt.Sprintf("%q: 'L' (last) and 'W' (weekday) are not supported", s)
	case f.names != nil:
		return 0, fmt.Sprintf("invalid value %q (use a number or a name %s-%s)", s, f.names[0], f.names[len(f.names)-1])
	case s == "*":
		return 0, "'*' cannot be part of a range"
	default:
		return 0, fmt.Sprintf("invalid value %q (want a number %d-%d)", s, f.min, f.maxValue)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
