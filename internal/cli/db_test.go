package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/emulators/emutest"
)

func TestDBCleanDeletesOldFinishedRuns(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		"UPDRAFT_LOG_DIR":         t.TempDir(),
	}
	asFirstAdmin(t, env)
	must := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, env, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("updraft %s: exit %d\n%s%s\nwant %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	noop := filepath.Join(t.TempDir(), "quick.yaml")
	if err := os.WriteFile(noop, []byte("id: quick\nowner: o@example.com\ntasks:\n  - {id: a, type: noop}\n  - {id: b, type: noop, needs: [a]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("created", "dags", "deploy", noop, "testdata/seoul_daily.yaml")
	started := startAdvancer(t, env["GOOGLE_CLOUD_PROJECT"])
	for _, args := range [][]string{
		{"quick", "--logical-date", "2025-01-01T00:00:00Z"}, // noop: finished as soon as started
		{"quick", "--logical-date", "2025-02-01T00:00:00Z"},
		{"seoul_daily", "--logical-date", "2025-01-02T09:00:00+09:00"}, // stays running
	} {
		out := must("triggered "+args[0]+"/manual__", append([]string{"trigger"}, args...)...)
		started(strings.TrimSpace(strings.TrimPrefix(out, "triggered ")))
	}

	out := must("dry run, nothing deleted: would delete 1 run(s), 2 task instance(s), 0 attempt(s)", "db", "clean", "--before", "2025-01-15", "--dry-run")
	if !strings.Contains(out, "kept 1 unfinished run(s)") || !strings.Contains(out, "seoul_daily/manual__") {
		t.Fatalf("dry run output:\n%s\nwant the unfinished run named", out)
	}
	must("manual__2025-01-01", "runs", "list", "quick")
	// Each run's log folder, as the local worker keeps it (LOG_DIR/DAG/RUN_ID/TASK/...).
	oldLog := filepath.Join(env["UPDRAFT_LOG_DIR"], "quick", "manual__2025-01-01T00:00:00Z", "a")
	newLog := filepath.Join(env["UPDRAFT_LOG_DIR"], "quick", "manual__2025-02-01T00:00:00Z", "a")
	for _, d := range []string{oldLog, newLog} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "try-1-x.log"), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out = must("deleted 1 run(s), 2 task instance(s), 0 attempt(s)", "db", "clean", "--before", "2025-01-15")
	if !strings.Contains(out, "deleted the logs of 1 run(s)") {
		t.Fatalf("db clean:\n%s\nwant the deleted run's logs deleted", out)
	}
	if _, err := os.Stat(filepath.Dir(oldLog)); !os.IsNotExist(err) {
		t.Fatalf("the deleted run's logs are still on disk (%v)", err)
	}
	if _, err := os.Stat(newLog); err != nil {
		t.Fatalf("the kept run's logs are gone: %v", err)
	}
	out = must("manual__2025-02-01", "runs", "list", "quick")
	if strings.Contains(out, "manual__2025-01-01") {
		t.Fatalf("runs list after clean:\n%s\nthe old run is still there", out)
	}
	must("manual__2025-01-02T00:00:00Z  running", "runs", "list", "seoul_daily")
	must("deleted 0 run(s)", "db", "clean", "--before", "2025-01-15")

	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"db", "clean"}, "--before DATE is required", 2},
		{[]string{"db", "clean", "--before", "yesterday"}, "not a date", 2},
		{[]string{"db", "clean", "--before", "2999-01-01"}, "in the future", 1},
	} {
		out, errOut, code := run(t, env, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("updraft %s: exit %d\n%s%s\nwant exit %d and %q", strings.Join(c.args, " "), code, out, errOut, c.code, c.want)
		}
	}
}
