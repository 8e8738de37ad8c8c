// Package emutest runs a test binary against the local Firestore and Pub/Sub
// emulators.
//
//	func TestMain(m *testing.M) { emutest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		project := emutest.Project(t) // own Firestore data, own topics
//		fs, err := firestore.NewClient(ctx, project)
//		...
//	}
//
// Main starts both emulators once per test binary (about 1-2 s; reusing
// running ones when FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are both
// set), points the client libraries at them, runs the tests and stops them.
// Tests isolate their data by using a fresh project id: both emulators keep
// every project separate.
//
// If the emulators are not installed, Main prints what to install and the
// test binary fails: tests are never skipped silently.
package emutest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
)

// Main starts the emulators, runs the tests and stops the emulators, then
// exits the process with the tests' status (so it must be the last call in
// TestMain). When the environment already names both emulators
// (FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST), it uses them instead and
// stops nothing. The emulators' logs go to a temporary directory, removed
// after a successful run and printed otherwise.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if set, ok := emulators.FromEnv(); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := set.WaitReady(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "emutest: %s=%s and %s=%s are set, but the emulators do not answer: %v\n"+
				"emutest: start them (go run ./emulators/cmd/emulators) or unset both variables to let the tests start their own\n",
				emulators.FirestoreHostEnv, set.Firestore.Host, emulators.PubSubHostEnv, set.PubSub.Host, err)
			return 2
		}
		return m.Run()
	}
	if fs, ps := os.Getenv(emulators.FirestoreHostEnv), os.Getenv(emulators.PubSubHostEnv); fs != "" || ps != "" {
		fmt.Fprintf(os.Stderr, "emutest: only one of %s and %s is set; starting both emulators\n",
			emulators.FirestoreHostEnv, emulators.PubSubHostEnv)
	}

	if err := emulators.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "emutest: these tests need the Firestore and Pub/Sub emulators:\n%v\n", err)
		return 2
	}
	logDir, err := os.MkdirTemp("", "updraft-emulators-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "emutest: %v\n", err)
		return 2
	}
	set, err := emulators.StartAll(context.Background(), logDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "emutest: %v\nemutest: emulator logs kept in %s\n", err, logDir)
		return 2
	}
	set.Apply()

	code := m.Run()

	if err := set.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "emutest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "emutest: emulator logs kept in %s\n", logDir)
	} else {
		os.RemoveAll(logDir)
	}
	return code
}

// Project returns a GCP project id unique to this call, derived from the
// test's name ("t-" + up to 19 characters of the sanitized name + "-" + 8
// random hex digits; always a valid project id: 6-30 characters, lowercase
// letters, digits and hyphens, starting with a letter). Both emulators keep
// projects separate, so tests using different ids can run in parallel
// without seeing each other's documents, topics or subscriptions.
//
// It fails the test if the emulators are not configured (Main not used), so
// that no test ever talks to real GCP.
func Project(t testing.TB) string {
	t.Helper()
	if os.Getenv(emulators.FirestoreHostEnv) == "" || os.Getenv(emulators.PubSubHostEnv) == "" {
		t.Fatalf("emutest.Project: %s and %s are not set; add `func TestMain(m *testing.M) { emutest.Main(m) }` to this package",
			emulators.FirestoreHostEnv, emulators.PubSubHostEnv)
	}
	return projectID(t.Name())
}

const maxNameLen = 30 - len("t-") - len("-") - 8

func projectID(testName string) string {
	var b strings.Builder
	hyphen := true // no leading hyphen, no doubled hyphens
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			hyphen = false
		case !hyphen:
			b.WriteByte('-')
			hyphen = true
		}
	}
	name := strings.TrimPrefix(b.String(), "test")
	name = strings.Trim(name, "-")
	if len(name) > maxNameLen {
		name = strings.TrimRight(name[:maxNameLen], "-")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	if name == "" {
		return "t-" + hex.EncodeToString(rnd[:])
	}
	return "t-" + name + "-" + hex.EncodeToString(rnd[:])
}
