package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/scheduler"
)

// A running try carries the end of the try before it: its duration is the time so far,
// never negative.
func TestDurationOfARunningRetryIsNotNegative(t *testing.T) {
	start := time.Now().Add(-3 * time.Second)
	earlierEnd := start.Add(-time.Minute) // the failed try's end, still on the instance
	got := duration(&start, endedIfFinished(scheduler.TaskRunning, &earlierEnd))
	if strings.HasPrefix(got, "-") || !strings.HasSuffix(got, "…") {
		t.Fatalf("running try's duration %q; want the time so far, marked running", got)
	}
	if got := duration(&start, &earlierEnd); got != "-" {
		t.Fatalf("an end before the start gives %q; want -", got)
	}
}

// Ctrl-C while following a backfill stops watching: no error (exit 0), and it says the
// backfill goes on.
func TestBackfillWatchInterruptedIsNotAnError(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		"UPDRAFT_HOME":            t.TempDir(),
	}
	asFirstAdmin(t, env)
	if out, errOut, code := run(t, env, "dags", "deploy", "testdata/seoul_daily.yaml"); code != 0 {
		t.Fatalf("deploy: %s %s", out, errOut)
	}
	out, errOut, code := run(t, env, "backfill", "seoul_daily", "--from", "2025-01-01", "--to", "2025-01-03", "--no-wait")
	if code != 0 {
		t.Fatalf("backfill: %s %s", out, errOut)
	}
	var buf bytes.Buffer
	a := &App{Stdout: &buf, Stderr: &buf, Getenv: func(k string) string { return env[k] }}
	o, closeFn, err := a.openLocalOps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as Ctrl-C does, before the first read
	if err := followBackfill(ctx, a, o, "seoul_daily", "seoul_daily~2025-01-01~2025-01-03"); err != nil {
		t.Fatalf("interrupted watch: %v; want no error", err)
	}
	if !strings.Contains(buf.String(), "continues server-side") {
		t.Fatalf("output %q; want it to say the backfill goes on", buf.String())
	}
}
