package logemu

import (
	"strings"
	"testing"
	"unicode/utf8"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
)

// FuzzParseFilter: no filter makes the parser panic, and a quoted value (backslashes and
// quotes escaped, as the query language wants) matches exactly that value, whatever it holds.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`x`, `a" OR labels.k="b`, `\`, `\"`, `(`, `NOT`, `" AND timestamp>="2000`, `é"ü`} {
		f.Add(s, `labels.k="1" OR (NOT severity>=ERROR) textPayload:x`)
	}
	f.Fuzz(func(t *testing.T, value, filter string) {
		_, _ = parseFilter(filter) // must not panic
		if !utf8.ValidString(value) || strings.ContainsAny(value, "\n\t\r") {
			return
		}
		q := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value) + `"`
		m, err := parseFilter(`labels.k=` + q + ` AND resource.type="cloud_run_job"`)
		if err != nil {
			t.Fatalf("quoted value %q: %v", value, err)
		}
		entry := func(v string) *loggingpb.LogEntry {
			return &loggingpb.LogEntry{Labels: map[string]string{"k": v}}
		}
		if m(entry(value)) {
			t.Fatalf("%q matched an entry without the resource type", value)
		}
		withType := func(v string) *loggingpb.LogEntry {
			e := entry(v)
			e.Resource = &monitoredres.MonitoredResource{Type: "cloud_run_job"}
			return e
		}
		if !m(withType(value)) || m(withType(value+"x")) || m(withType("")) && value != "" {
			t.Fatalf("quoted value %q does not match exactly itself", value)
		}
	})
}
