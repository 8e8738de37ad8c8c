// Package gcs is the local Cloud Storage stand-in: fake-gcs-server's fakestorage, in
// process, speaking the real JSON (and XML read) API to the real client, which finds it
// through STORAGE_EMULATOR_HOST. It holds the bundle bucket; objects persist under a folder
// when one is given.
//
// Production binaries must not import it.
package gcs

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/updraft-dev/updraft/internal/bundle"
)

// EnvVar is the variable the storage client reads to find the stand-in.
const EnvVar = "STORAGE_EMULATOR_HOST"

// Bucket is the bundle bucket the stand-in creates.
const Bucket = "updraft-bundles"

// Server is a running stand-in.
type Server struct {
	srv *fakestorage.Server
	// Host is "127.0.0.1:PORT".
	Host string
}

// Start serves on a free loopback port, keeping objects under dir ("" : in memory).
func Start(dir string) (*Server, error) {
	opts := fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard, NoListener: false}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		opts.StorageRoot = dir
	}
	srv, err := fakestorage.NewServerWithOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("gcs stand-in: %w", err)
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	host := strings.TrimPrefix(srv.URL(), "http://")
	return &Server{srv: srv, Host: host}, nil
}

// Env is what clients need: the stand-in's host and the bundle bucket.
func (s *Server) Env() []string {
	return []string{EnvVar + "=" + s.Host, bundle.EnvBucket + "=" + Bucket}
}

// Stop stops serving.
func (s *Server) Stop() { s.srv.Stop() }
