package layers

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the import rules section of docs/architecture.md from the table")

const (
	docPath  = "../../docs/architecture.md"
	docBegin = "<!-- BEGIN import rules: generated from internal/layers/rules.go by `go test ./internal/layers -run TestDocTable -update` -->"
	docEnd   = "<!-- END import rules -->"
)

// TestDocTable checks that docs/architecture.md shows the table as it is in rules.go.
func TestDocTable(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	before, rest, ok1 := strings.Cut(text, docBegin+"\n")
	got, after, ok2 := strings.Cut(rest, docEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s: no section between %q and %q", docPath, docBegin, docEnd)
	}
	want := Rules.Markdown()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(before+docBegin+"\n"+want+docEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the import rules section differs from internal/layers/rules.go; run `go test ./internal/layers -run TestDocTable -update`. Want:\n%s", docPath, want)
}

// Markdown renders the table for docs/architecture.md: the groups, the rules, and the
// exemptions.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| group | patterns | what they are |\n| --- | --- | --- |\n")
	for _, g := range t.Groups {
		fmt.Fprintf(&b, "| `$%s` | %s | %s |\n", g.Name, code(g.Patterns), g.Doc)
	}
	b.WriteString("\n| rule | packages | must not | why |\n| --- | --- | --- | --- |\n")
	var exempt []string
	for _, r := range t.Rules {
		from := code(r.From)
		if len(r.Except) > 0 {
			from += " except " + code(r.Except)
		}
		verb := "import"
		if r.Reach {
			verb = "reach"
		}
		forbid := verb + " " + code(r.Forbid)
		if len(r.Allow) > 0 {
			forbid += " except " + code(r.Allow)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, from, forbid, r.Why)
		for _, e := range r.Exempt {
			exempt = append(exempt, fmt.Sprintf("| `%s` | `%s` → `%s` | %s |\n", r.Name, e.From, e.To, e.Why))
		}
	}
	if len(exempt) > 0 {
		b.WriteString("\nTolerated today (each row goes when its reason does; the test fails on one no longer needed):\n\n")
		b.WriteString("| rule | import | why |\n| --- | --- | --- |\n")
		b.WriteString(strings.Join(exempt, ""))
	}
	return b.String()
}

func code(patterns []string) string {
	quoted := make([]string, len(patterns))
	for i, p := range patterns {
		quoted[i] = "`" + p + "`"
	}
	return strings.Join(quoted, ", ")
}

// TestDocPointers checks that every package whose doc.go points at this table ("Its import
// rules are rows of the table in internal/layers") is named by a rule of its own, not only
// covered by a rule over the whole module.
func TestDocPointers(t *testing.T) {
	t.Parallel()
	g := moduleGraph(t)
	pointed := 0
	for path := range g {
		rel, ok := strings.CutPrefix(path, Module+"/")
		if !ok {
			continue
		}
		doc, err := os.ReadFile(filepath.Join("../..", rel, "doc.go"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(string(doc)), " "), "table in internal/layers") {
			continue
		}
		pointed++
		if !Rules.names(path) {
			t.Errorf("%s/doc.go points at the table in internal/layers, but no rule names ./%s among its packages", rel, rel)
		}
	}
	if pointed == 0 {
		t.Error("no doc.go points at the table: the search is broken")
	}
}

// names tells whether a rule's From, with groups expanded but not "./...", covers path.
func (t Table) names(path string) bool {
	for _, r := range t.Rules {
		from, err := t.expand(r.From, nil)
		if err != nil {
			continue
		}
		for _, p := range from {
			if p != "./..." && t.match(p, path) && !t.matchAny(r.Except, path) {
				return true
			}
		}
	}
	return false
}
