package emutest

import (
	"regexp"
	"strings"
	"testing"
)

// Valid GCP project id: 6-30 characters, lowercase letters, digits and
// hyphens, starting with a letter, not ending with a hyphen.
var validProject = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

func TestProjectID(t *testing.T) {
	for _, tc := range []struct{ name, prefix string }{
		{"TestFoo", "t-foo-"},
		{"TestRunDAG/parallel_tasks#01", "t-rundag-parallel-tas"},
		{"Test", "t-"},
		{"", "t-"},
		{"TestÜber__--weird!!Name", "t-ber-weird-name-"},
		{"Test_" + strings.Repeat("x", 100), "t-" + strings.Repeat("x", 19) + "-"},
		{"TestA/" + strings.Repeat("-", 30) + "b", "t-a-b-"},
		{"TestABCDEFGHIJKLMNOPQR-S", "t-abcdefghijklmnopqr-"}, // truncation right after a hyphen
	} {
		id := projectID(tc.name)
		if !validProject.MatchString(id) || strings.Contains(id, "--") {
			t.Errorf("projectID(%q) = %q: not a valid project id", tc.name, id)
		}
		if !strings.HasPrefix(id, tc.prefix) {
			t.Errorf("projectID(%q) = %q, want prefix %q", tc.name, id, tc.prefix)
		}
	}
}

func TestProjectUnique(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:2")
	seen := map[string]bool{}
	for range 1000 {
		p := Project(t)
		if seen[p] {
			t.Fatalf("Project returned %q twice", p)
		}
		seen[p] = true
		if !validProject.MatchString(p) {
			t.Fatalf("Project = %q: not a valid project id", p)
		}
	}
}
