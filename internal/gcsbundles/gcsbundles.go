// Package gcsbundles stores bundle archives in a Cloud Storage bucket, as
// bundles/HASH.tar.gz: the adapter between package bundle and cloud.google.com/go/storage.
// Locally the client finds the stand-in through STORAGE_EMULATOR_HOST, as it does by itself.
//
// No storage SDK type leaves this package.
package gcsbundles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/updraft-dev/updraft/internal/bundle"
)

// Store is a bucket of bundles.
type Store struct {
	client *storage.Client
	bucket string
}

var _ bundle.Store = (*Store)(nil)

// Open connects to the bucket with the default credentials (or the stand-in named by
// STORAGE_EMULATOR_HOST).
func Open(ctx context.Context, bucket string) (*Store, error) {
	if bucket == "" {
		return nil, fmt.Errorf("gcsbundles: no bucket named (set %s)", bundle.EnvBucket)
	}
	c, err := storage.NewClient(ctx, storage.WithJSONReads()) // JSON API throughout, as the stand-in speaks it
	if err != nil {
		return nil, fmt.Errorf("gcsbundles: %w", err)
	}
	return &Store{client: c, bucket: bucket}, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.client.Close() }

// Object is the object name of a bundle.
func Object(hash string) string { return "bundles/" + hash + ".tar.gz" }

// Put stores an archive unless an object of that name is there already (the name is the
// contents' hash, so it holds the same bytes; a tampered one is caught when fetched). Either
// way the object's custom time becomes now: the bucket's lifecycle rule deletes the bundles
// no deploy has named for a while (infra/bundles.tf).
func (s *Store) Put(ctx context.Context, hash string, archive []byte) error {
	now := time.Now().UTC()
	obj := s.client.Bucket(s.bucket).Object(Object(hash))
	w := obj.If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ContentType = "application/gzip"
	w.CustomTime = now
	w.ChunkSize = 0 // one request: bundles are small
	if _, err := w.Write(archive); err != nil {
		_ = w.Close()
		return fmt.Errorf("gcsbundles: put %s: %w", hash, err)
	}
	err := w.Close()
	var gerr *googleapi.Error
	if errors.As(err, &gerr) && gerr.Code == 412 {
		if _, err := obj.Update(ctx, storage.ObjectAttrsToUpdate{CustomTime: now}); err != nil {
			return fmt.Errorf("gcsbundles: mark %s as deployed again: %w", hash, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("gcsbundles: put %s in gs://%s: %w", hash, s.bucket, err)
	}
	return nil
}

// ErrNotFound says no bundle of that hash is stored.
var ErrNotFound = errors.New("gcsbundles: no such bundle")

// Get reads a stored archive.
func (s *Store) Get(ctx context.Context, hash string) ([]byte, error) {
	r, err := s.client.Bucket(s.bucket).Object(Object(hash)).NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, fmt.Errorf("%w: gs://%s/%s", ErrNotFound, s.bucket, Object(hash))
	}
	if err != nil {
		return nil, fmt.Errorf("gcsbundles: get gs://%s/%s: %w", s.bucket, Object(hash), err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 2*bundle.MaxBytes))
	if err != nil {
		return nil, fmt.Errorf("gcsbundles: read gs://%s/%s: %w", s.bucket, Object(hash), err)
	}
	return b, nil
}

// PutRaw writes bytes under a bundle's name unconditionally: for tests that tamper with a
// stored bundle.
func (s *Store) PutRaw(ctx context.Context, hash string, data []byte) error {
	w := s.client.Bucket(s.bucket).Object(Object(hash)).NewWriter(ctx)
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

// NewCache is the bundle cache of a component, from its environment: the bucket named by
// UPDRAFT_BUNDLE_BUCKET (none: only folders used in place can be read) and the folder
// UPDRAFT_BUNDLE_CACHE (default the user cache folder's updraft/bundles).
func NewCache(ctx context.Context, getenv func(string) string) (*bundle.Cache, error) {
	c := &bundle.Cache{Dir: bundle.DefaultCacheDir(getenv)}
	if bucket := getenv(bundle.EnvBucket); bucket != "" {
		st, err := Open(ctx, bucket)
		if err != nil {
			return nil, err
		}
		c.Store = st
	}
	return c, nil
}
