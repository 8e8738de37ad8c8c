//go:build unix

package bqemu

import (
	"context"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx ends, and returns its release. The kernel drops the
// lock if the process dies, so a crashed build never wedges the next one.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, err
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// The flock may still succeed later: closing the file then releases it.
		go func() {
			<-got
			f.Close()
		}()
		return nil, ctx.Err()
	}
}
