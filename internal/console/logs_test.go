package console_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/console"
)

func TestFileLogsFollowsAGrowingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.log")
	write := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"severity":"INFO","message":"one","time":"2025-01-01T00:00:00Z"}` + "\n" + `{"severity":"INFO","mess`)
	q := console.LogQuery{Ref: "file:" + path, Limit: 100}
	es, next, err := console.FileLogs{}.ReadLog(context.Background(), q)
	if err != nil || len(es) != 1 || es[0].Message != "one" {
		t.Fatalf("first read = %v, %v", es, err)
	}
	// The half-written line is read once it is complete, from the cursor.
	write(`age":"two","time":"2025-01-01T00:00:01Z"}` + "\n" + "not json\n")
	q.After = next
	es, next2, err := console.FileLogs{}.ReadLog(context.Background(), q)
	if err != nil || len(es) != 2 || es[0].Message != "two" || es[1].Message != "not json" || next2 <= next {
		t.Fatalf("second read = %v, %d, %v", es, next2, err)
	}
	q.Ref = "file:" + filepath.Join(t.TempDir(), "gone.log")
	if _, _, err := (console.FileLogs{}).ReadLog(context.Background(), q); !errors.Is(err, console.ErrLogExpired) {
		t.Errorf("a missing file = %v; want ErrLogExpired", err)
	}
	q.Ref = "cloud-logging"
	if _, _, err := (console.FileLogs{}).ReadLog(context.Background(), q); !errors.Is(err, console.ErrNoLog) {
		t.Errorf("a non-file ref = %v; want ErrNoLog", err)
	}
}

func TestCloudLogFilter(t *testing.T) {
	t.Parallel()
	started := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	q := console.LogQuery{DagID: "etl", RunID: "scheduled__2025-01-01T00:00:00Z", TaskID: `load"x`, Try: 2, Started: started}
	want := `labels.dag_id="etl" AND labels.run_id="scheduled__2025-01-01T00:00:00Z" AND labels.task_id="load\"x" AND labels.try_number="2" AND timestamp>="2025-01-02T03:03:05Z"`
	if got := console.CloudLogFilter(q); got != want {
		t.Errorf("filter =\n%s\nwant\n%s", got, want)
	}
	q.After = started.Add(time.Second).UnixNano()
	if got := console.CloudLogFilter(q); !strings.HasSuffix(got, ` AND timestamp>"2025-01-02T03:04:06Z"`) {
		t.Errorf("filter after a cursor = %s", got)
	}
	// A log older than the retention is expired, without asking Cloud Logging.
	l := &console.CloudLogs{Retention: time.Hour, Now: func() time.Time { return started.Add(2 * time.Hour) }}
	if _, _, err := l.ReadLog(context.Background(), q); !errors.Is(err, console.ErrLogExpired) {
		t.Errorf("an old log = %v; want ErrLogExpired", err)
	}
}

// TestFileLogsReadsLinesOfAnyLength: a log holding a 3 MiB line gives it whole, and the
// line after it too (`updraft logs` used to stop with "token too long").
func TestFileLogsReadsLinesOfAnyLength(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "attempt.log")
	long := strings.Repeat("a", 3<<20)
	var file strings.Builder
	for _, msg := range []string{"running", long, "last"} {
		file.WriteString(`{"severity":"INFO","message":"` + msg + `","time":"2025-01-01T00:00:00Z"}` + "\n")
	}
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	es, _, err := console.FileLogs{}.ReadLog(context.Background(), console.LogQuery{Ref: "file:" + path})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[1].Message != long || es[2].Message != "last" {
		t.Fatalf("%d entries; want 3, the long one whole and then last", len(es))
	}
}

// A try whose attempts each wrote a log (a deferred task's start and its pokes) reads as one
// log, oldest attempt first, in chunks whose cursor carries from one file to the next; an
// attempt that wrote no file is skipped.
func TestFileLogsReadsATrysAttemptsAsOneLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	line := func(msg string) string {
		return `{"severity":"INFO","message":"` + msg + `","time":"2025-01-01T00:00:00Z"}` + "\n"
	}
	files := map[string]string{"start.log": line("started execution x (tag t)") + line("runs"), "poke.log": line("out 1") + line("out 2") + line("succeeded")}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	refs := []string{"file:" + filepath.Join(dir, "start.log"), "file:" + filepath.Join(dir, "never-ran.log"), "file:" + filepath.Join(dir, "poke.log")}
	q := console.LogQuery{Ref: refs[2], Refs: refs, Limit: 2}
	var got []string
	for range 10 {
		es, next, err := console.FileLogs{}.ReadLog(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e.Message)
		}
		if len(es) == 0 {
			break
		}
		q.After = next
	}
	want := "started execution x (tag t)|runs|out 1|out 2|succeeded"
	if strings.Join(got, "|") != want {
		t.Fatalf("read in chunks of 2: %q; want %q", strings.Join(got, "|"), want)
	}
}
