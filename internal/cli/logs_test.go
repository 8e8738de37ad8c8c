package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/tasks"
)

// TestLogsPrintsLinesOfAnyLength: a log holding a 3 MiB line is printed whole, and the line
// after it too (the reader used to stop with "token too long").
func TestLogsPrintsLinesOfAnyLength(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "attempt.log")
	long := strings.Repeat("a", 3<<20)
	var file bytes.Buffer
	for _, msg := range []string{"running", long, "last"} {
		b, err := json.Marshal(tasks.Entry{Severity: "INFO", Message: msg, Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		file.Write(append(b, '\n'))
	}
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []bool{false, true} {
		var out bytes.Buffer
		if err := printLog(&App{Stdout: &out}, "file:"+path, raw, time.UTC); err != nil {
			t.Fatalf("raw=%v: %v", raw, err)
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		if len(lines) != 3 || !strings.Contains(lines[1], long) || !strings.Contains(lines[2], "last") {
			t.Fatalf("raw=%v: %d lines, the last %q; want 3, the long one whole and then last", raw, len(lines), truncateForTest(lines[len(lines)-1]))
		}
	}
}

func truncateForTest(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
