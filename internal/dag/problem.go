package dag

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a DAG file: where it is, which field, what is wrong and how to
// fix it.
type Problem struct {
	// File is the path of the DAG file, as it was given to Parse or LoadFiles.
	File string `json:"file"`
	// Line is the 1-based line in File; 0 when the problem concerns the whole file.
	Line int `json:"line,omitempty"`
	// Field is the path of the field at fault, such as "schedule", "defaults.retries" or
	// "tasks[2].needs"; empty when the problem is not about one field.
	Field string `json:"field,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"msg"`
	// Hint says how to fix it; it may be empty.
	Hint string `json:"hint,omitempty"`
}

// Error formats the problem as "file:line: field: msg (hint: hint)", leaving out the parts that
// are empty.
func (p Problem) Error() string {
	var b strings.Builder
	loc := p.File
	if p.Line > 0 {
		loc += ":" + strconv.Itoa(p.Line)
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Problems is the list of everything wrong with one or more DAG files, sorted by file and line.
// It is an error so that Parse can return it as one.
type Problems []Problem

// Error formats the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file, then line, keeping the order of discovery for problems
// on the same line, and drops exact duplicates.
func sortProblems(ps Problems) Problems {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	out := ps[:0]
	seen := make(map[Problem]bool, len(ps))
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}
