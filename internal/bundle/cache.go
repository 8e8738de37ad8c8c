package bundle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Store keeps bundle archives by hash (gcsbundles.Store on Cloud Storage and its stand-in).
type Store interface {
	// Put stores an archive under its hash; storing one that is there already is a no-op.
	Put(ctx context.Context, hash string, archive []byte) error
	// Get returns the archive stored under hash.
	Get(ctx context.Context, hash string) ([]byte, error)
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Cache gives a bundle's root directory on this machine: a local Ref's directory as is, a
// stored one fetched, verified and unpacked once under Dir/HASH (a warm worker reuses it).
type Cache struct {
	Dir   string
	Store Store // nil: only local bundles can be used
}

// Root returns the directory holding ref's files. Concurrent calls for the same hash (two
// workers on one machine) both end with the same complete directory.
func (c *Cache) Root(ctx context.Context, ref Ref) (string, error) {
	if ref.Hash == "" {
		if ref.Dir == "" {
			return "", errors.New("bundle: the DAG version names no bundle")
		}
		return ref.Dir, nil
	}
	if !hashRE.MatchString(ref.Hash) {
		return "", fmt.Errorf("bundle: %q is not a bundle hash", ref.Hash)
	}
	dst := filepath.Join(c.Dir, ref.Hash)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if c.Store == nil {
		return "", fmt.Errorf("bundle %s: this worker has no bundle store configured (set %s)", ref.Short(), EnvBucket)
	}
	archive, err := c.Store.Get(ctx, ref.Hash)
	if err != nil {
		return "", fmt.Errorf("bundle %s: fetch: %w", ref.Short(), err)
	}
	tarball, err := Verify(ref.Hash, archive)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("bundle cache: %w", err)
	}
	tmp, err := os.MkdirTemp(c.Dir, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("bundle cache: %w", err)
	}
	if err := unpack(tarball, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("bundle %s: unpack: %w", ref.Short(), err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dst); serr == nil { // another worker got there first
			return dst, nil
		}
		return "", fmt.Errorf("bundle cache: %w", err)
	}
	return dst, nil
}

// Environment variables of the bundle store and cache.
const (
	// EnvBucket names the Cloud Storage bucket holding bundles (locally the stand-in's).
	EnvBucket = "UPDRAFT_BUNDLE_BUCKET"
	// EnvCache is where workers unpack bundles (default: the user cache dir's updraft/bundles).
	EnvCache = "UPDRAFT_BUNDLE_CACHE"
	// EnvRoot is what a task sees: the root of its bundle.
	EnvRoot = "UPDRAFT_BUNDLE"
	// EnvHash is what a task sees: its bundle's hash ("local" for a directory used in place).
	EnvHash = "UPDRAFT_BUNDLE_HASH"
)

// DefaultCacheDir is the cache directory when EnvCache is unset.
func DefaultCacheDir(getenv func(string) string) string {
	if d := getenv(EnvCache); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "updraft", "bundles")
	}
	return filepath.Join(os.TempDir(), "updraft-bundles")
}
