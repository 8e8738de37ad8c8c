package render

import (
	"fmt"
	"regexp"
	"strings"
)

// Shq quotes v as one POSIX shell word: 'it'\”s' for it's. Whatever v holds ($(…),
// backticks, ;, newlines, quotes), the shell reads it as data. A NUL byte, which no shell
// argument can carry, is an error.
func Shq(v any) (string, error) {
	s := fmt.Sprint(v)
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("shq: the value holds a NUL byte, which a shell word can't carry")
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
}

// tablePart is one part of a BigQuery table path: a project, a region qualifier, a dataset
// or a table (a wildcard table may end in *).
var tablePart = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// BqIdent quotes v as a BigQuery table path in backquotes: `project.dataset.table`. It takes
// 1 to 4 dot-separated parts (`region-us`.INFORMATION_SCHEMA.JOBS has 3, a project before it
// 4), each of letters, digits, _ and -, the last optionally ending in * (a wildcard table),
// with or without backquotes around the whole path or its parts. Anything else (quotes,
// spaces, comments, a second statement) is an error: a table name can't carry SQL.
func BqIdent(v any) (string, error) {
	raw := fmt.Sprint(v)
	s := strings.ReplaceAll(strings.TrimSpace(raw), "`", "")
	parts := strings.Split(s, ".")
	bad := len(parts) > 4 || s == ""
	for i, p := range parts {
		if i == len(parts)-1 {
			p = strings.TrimSuffix(p, "*")
		}
		if len(p) > 1024 || !tablePart.MatchString(p) {
			bad = true
		}
	}
	if bad {
		return "", fmt.Errorf("bqIdent: %q is not a BigQuery table path like dataset.table or project.dataset.table (letters, digits, _ and - only)", truncate(raw, 80))
	}
	return "`" + s + "`", nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
