//go:build unix

package bqemu

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestLockFileExcludesAndHonoursContext(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "build.lock")
	unlock, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// A second taker waits; when its context ends it gives up.
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		u, err := lockFile(ctx, path)
		if err == nil {
			u()
		}
		res <- err
	}()
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("a second taker while the lock is held: %v; want context.Canceled", err)
	}
	unlock()
	// Released: the next taker gets it (the abandoned waiter, if it got the lock in
	// between, releases it at once).
	u, err := lockFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	u()
}
