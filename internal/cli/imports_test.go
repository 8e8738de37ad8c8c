package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/emulators/emutest"
)

// TestDagsListShowsWhatTheLastDeployCouldNotLoad: away from `updraft dev`, `dags list` shows the
// files the last `dags deploy` failed to load, with their first problem, and forgets them once
// a deploy loads every file.
func TestDagsListShowsWhatTheLastDeployCouldNotLoad(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		"UPDRAFT_USER":            "kim@example.com",
	}
	asFirstAdmin(t, env)
	out, errOut, code := run(t, env, "dags", "deploy", "testdata/seoul_daily.yaml", "testdata/broken.yaml")
	if code != 1 || !strings.Contains(out, "seoul_daily") {
		t.Fatalf("deploy of a good and a broken file: exit %d; want 1 with seoul_daily deployed\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, env, "dags", "list")
	if code != 0 {
		t.Fatalf("dags list: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"seoul_daily", "problem(s) in DAG files that failed to load",
		"testdata/broken.yaml:2: owner:", "testdata/broken.yaml:3: schedule:"} {
		if !strings.Contains(out, want) {
			t.Errorf("dags list lacks %q:\n%s", want, out)
		}
	}
	if out, errOut, code := run(t, env, "dags", "deploy", "testdata/seoul_daily.yaml"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, errOut)
	}
	if out, _, _ := run(t, env, "dags", "list"); strings.Contains(out, "failed to load") || !strings.Contains(out, "seoul_daily") {
		t.Errorf("after a deploy that loaded every file, dags list should show no import errors:\n%s", out)
	}
}
