package dag

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxDays is the largest number of days a time.Duration holds.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// ParseDuration reads a duration as DAG files write it: a Go duration ("90s", "5m", "1h30m"),
// optionally with days ("1d", "1d12h", "1.5d"), or a bare whole number of seconds ("30").
// Negative durations are an error.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("negative duration")
	}
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > int64(math.MaxInt64/int64(time.Second)) {
			return 0, errors.New("duration too large")
		}
		return time.Duration(n) * time.Second, nil
	}
	s = strings.TrimPrefix(s, "+")
	// Rewrite every "<n>d" as hours and let time.ParseDuration do the rest.
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("invalid duration %s", quoteShort(s))
		}
		num := s[i:j]
		k := j
		for k < len(s) && !(s[k] >= '0' && s[k] <= '9' || s[k] == '.') {
			k++
		}
		unit := s[j:k]
		if unit == "d" {
			days, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %s", quoteShort(s))
			}
			if days > float64(maxDays) {
				return 0, errors.New("duration too large")
			}
			b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64))
			b.WriteString("h")
		} else {
			b.WriteString(num)
			b.WriteString(unit)
		}
		i = k
	}
	d, err := time.ParseDuration(b.String())
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "missing unit") {
			return 0, fmt.Errorf("invalid duration %s: a number needs a unit (ms, s, m, h, d)", quoteShort(s))
		}
		if strings.Contains(msg, "unknown unit") {
			return 0, fmt.Errorf("invalid duration %s: units are ms, s, m, h and d", quoteShort(s))
		}
		if strings.Contains(msg, "overflow") || strings.Contains(msg, "invalid duration") && len(s) > 15 {
			return 0, fmt.Errorf("invalid or too large duration %s", quoteShort(s))
		}
		return 0, fmt.Errorf("invalid duration %s", quoteShort(s))
	}
	return d, nil
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
