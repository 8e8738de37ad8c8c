//go:build soak

// Package soak is the soak and chaos suite: black-box tests that build the real binaries,
// start the real local stack (`updraft dev`) as a user would, drive it with the CLI and the
// REST API, kill processes and emulators, and assert with execution counts (every task
// appends a line to a file). docs/soak.md says how to run it and what each test proves.
//
// It is behind the build tag `soak` so that `go test ./...` ignores it: `make soak` runs the
// long mode, `UPDRAFT_SOAK=short go test -tags soak ./soak/` the short one.
package soak

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
)

var longFlag = flag.Bool("soak.long", false, "run the long versions (also UPDRAFT_SOAK=long)")

// updraftBin is the `updraft` binary built by TestMain; repoRoot the module's root.
var updraftBin, repoRoot string

// sharedEmulators are the Firestore and Pub/Sub emulators the stacks share (each stack has
// its own project); the chaos test starts its own, to kill them.
var sharedEmulators []string

// long reports whether the long mode was asked for (`-soak.long` or UPDRAFT_SOAK=long).
func long() bool { return *longFlag || os.Getenv("UPDRAFT_SOAK") == "long" }

// pick returns short's value in the short mode and long's in the long one.
func pick[T any](short, long_ T) T {
	if long() {
		return long_
	}
	return short
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	tmp, err := os.MkdirTemp("", "updraft-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	updraftBin = filepath.Join(tmp, "updraft")
	build := exec.Command("go", "build", "-o", updraftBin, "./cmd/updraft")
	build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak: go build ./cmd/updraft:", err)
		return 1
	}
	if err := emulators.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 1
	}
	// `updraft dev` needs the BigQuery emulator; building it (once per machine) takes
	// minutes, so it is waited for here, once, rather than inside a test's start-up bound.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if _, err := bqemu.EnsureBuilt(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "soak: BigQuery emulator:", err)
		return 1
	}
	if set, ok := emulators.FromEnv(); ok {
		sharedEmulators = set.Env()
	} else {
		set, err := emulators.StartAll(ctx, filepath.Join(tmp, "emulators"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 1
		}
		defer set.Stop()
		sharedEmulators = set.Env()
	}
	fmt.Fprintf(os.Stderr, "soak: %s mode; emulators %s\n", pick("short", "long"), strings.Join(sharedEmulators, " "))
	return m.Run()
}

// reportMu serialises appends to UPDRAFT_SOAK_REPORT.
var reportMu sync.Mutex

// figures collects what a test measured; it is logged, and appended as one JSON line to the
// file UPDRAFT_SOAK_REPORT names, when the test ends (pass or fail).
type figures map[string]any

// newFigures returns the figures of t, reported at its end with its outcome.
func newFigures(t *testing.T) figures {
	f := figures{}
	start := time.Now()
	t.Cleanup(func() {
		line := map[string]any{"test": t.Name(), "mode": pick("short", "long"), "passed": !t.Failed(),
			"seconds": time.Since(start).Round(time.Second).Seconds()}
		for k, v := range f {
			line[k] = v
		}
		b, _ := json.Marshal(line)
		t.Logf("summary %s", b)
		path := os.Getenv("UPDRAFT_SOAK_REPORT")
		if path == "" {
			return
		}
		reportMu.Lock()
		defer reportMu.Unlock()
		out, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("UPDRAFT_SOAK_REPORT: %v", err)
			return
		}
		defer out.Close()
		fmt.Fprintf(out, "%s\n", b)
	})
	return f
}
