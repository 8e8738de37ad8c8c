//go:build unix

package emulators_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/emulators"
)

// TestFirestoreSnapshotSurvivesKill writes a document, exports a snapshot, writes another,
// kills the JVM with SIGKILL and restarts it on the same port: the snapshot's document is
// back, the one written after it is not (what a kill loses), and another project's data was
// never in the snapshot.
func TestFirestoreSnapshotSurvivesKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	e, err := emulators.StartFirestoreWith(ctx, t.TempDir(), emulators.FirestoreOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Stop() }()
	t.Setenv(emulators.FirestoreHostEnv, e.Host)
	const project = "persist-test"
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if _, err := fs.Doc("dags/kept").Set(ctx, map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.Export(ctx, project); err != nil {
		t.Fatal(err)
	}
	if err := e.Export(ctx, project); err != nil { // a second export replaces the first
		t.Fatal(err)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dataDir, "snap-*")); len(snaps) != 1 {
		t.Errorf("snapshots after two exports: %v; want only the latest", snaps)
	}
	if _, err := fs.Doc("dags/lost").Set(ctx, map[string]any{"n": 2}); err != nil {
		t.Fatal(err)
	}

	host, pid := e.Host, e.PID()
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	case <-ctx.Done():
		t.Fatal("the JVM did not exit after SIGKILL")
	}
	e2, err := e.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e = e2
	if e.Host != host || e.PID() == pid {
		t.Fatalf("restarted on %s (pid %d); want %s, a new process", e.Host, e.PID(), host)
	}
	if _, err := fs.Doc("dags/kept").Get(ctx); err != nil {
		t.Errorf("the exported document after a restart: %v", err)
	}
	if _, err := fs.Doc("dags/lost").Get(ctx); err == nil {
		t.Error("a document written after the last export survived a SIGKILL: the test does not test the snapshot")
	}
}

// TestPubSubRestartsOnItsPort restarts a killed Pub/Sub emulator on the same port.
func TestPubSubRestartsOnItsPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := emulators.StartPubSub(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Restart(ctx); err == nil {
		t.Error("Restart of a running emulator succeeded; want an error")
	}
	if err := syscall.Kill(-e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-e.Done()
	e2, err := e.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Stop()
	if e2.Host != e.Host {
		t.Fatalf("restarted on %s; want %s", e2.Host, e.Host)
	}
	if err := e2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}
