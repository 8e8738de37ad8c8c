//go:build unix

package emulators_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"github.com/updraft-dev/updraft/emulators"
)

// TestLifecycle starts a second, private Set, uses both emulators through the
// client libraries, stops it and checks that no process is left.
func TestLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logDir := t.TempDir()
	t0 := time.Now()
	set, err := emulators.StartAll(ctx, logDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartAll took %v", time.Since(t0).Round(time.Millisecond))
	defer set.Stop()

	for _, e := range []*emulators.Emulator{set.Firestore, set.PubSub} {
		host, _, err := net.SplitHostPort(e.Host)
		if err != nil || host != "127.0.0.1" {
			t.Errorf("%s Host = %q, want 127.0.0.1:PORT", e.Name, e.Host)
		}
		if e.PID() <= 0 {
			t.Errorf("%s PID = %d", e.Name, e.PID())
		}
		if pgid, err := syscall.Getpgid(e.PID()); err != nil || pgid != e.PID() {
			t.Errorf("%s: pgid of %d = %d, %v; want its own process group", e.Name, e.PID(), pgid, err)
		}
		if filepath.Dir(e.LogPath) != logDir {
			t.Errorf("%s LogPath = %s, want a file in %s", e.Name, e.LogPath, logDir)
		}
		exe, err := os.Readlink("/proc/" + strconv.Itoa(e.PID()) + "/exe")
		if err == nil && !strings.HasSuffix(exe, "/java") {
			t.Errorf("%s: process %d runs %s, want java itself (no wrapper)", e.Name, e.PID(), exe)
		}
	}
	if env := strings.Join(set.Env(), " "); env != "FIRESTORE_EMULATOR_HOST="+set.Firestore.Host+" PUBSUB_EMULATOR_HOST="+set.PubSub.Host {
		t.Errorf("Env() = %q", env)
	}

	// Point the clients at this Set (t.Setenv restores the shared one).
	for _, kv := range set.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	project := "lifecycle-test"

	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	doc := fs.Collection("runs").Doc("r1")
	if _, err := doc.Set(ctx, map[string]any{"state": "queued", "n": 1}); err != nil {
		t.Fatal(err)
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Data()["state"]; got != "queued" {
		t.Errorf("read back state = %v, want queued", got)
	}

	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if got := publishReceive(ctx, t, ps, "hello"); got != "hello" {
		t.Errorf("received %q, want hello", got)
	}

	pids := []int{set.Firestore.PID(), set.PubSub.PID()}
	t1 := time.Now()
	var fsStop, psStop time.Duration
	var fsErr, psErr error
	var wg sync.WaitGroup
	wg.Go(func() { fsErr = set.Firestore.Stop(); fsStop = time.Since(t1) })
	wg.Go(func() { psErr = set.PubSub.Stop(); psStop = time.Since(t1) })
	wg.Wait()
	if fsErr != nil || psErr != nil {
		t.Fatalf("Stop: %v", errors.Join(fsErr, psErr))
	}
	t.Logf("Stop took %v (firestore %v, pubsub %v)", time.Since(t1).Round(time.Millisecond), fsStop.Round(time.Millisecond), psStop.Round(time.Millisecond))
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has members after Stop (kill 0: %v)", pid, err)
		}
	}
	for _, e := range []*emulators.Emulator{set.Firestore, set.PubSub} {
		select {
		case <-e.Done():
		default:
			t.Errorf("%s Done() not closed after Stop", e.Name)
		}
	}
	if err := set.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, e := range []*emulators.Emulator{set.Firestore, set.PubSub} {
		if _, err := net.DialTimeout("tcp", e.Host, time.Second); err == nil {
			t.Errorf("%s: %s still accepts connections after Stop", e.Name, e.Host)
		}
	}
}

// TestStopReportsCrash kills the JVM behind the package's back: Done must
// fire and Stop must report that the emulator had died.
func TestStopReportsCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := emulators.StartPubSub(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	if err := syscall.Kill(e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed 30s after SIGKILL")
	}
	err = e.Stop()
	if err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Fatalf("Stop after crash = %v, want an 'already exited' error", err)
	}
	t.Logf("Stop after crash: %v", err)
	if err2 := e.Stop(); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Stop = %v, want the same error", err2)
	}
}
