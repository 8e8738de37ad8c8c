// Package backend opens what every Updraft service on GCP runs on, from its environment: the
// Firestore store, the Pub/Sub queue and the engine over them. The scheduler, the UI and the
// functions each start with it, so they read GOOGLE_CLOUD_PROJECT and the engine's settings
// the same way.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
)

// Backend is a service's store, queue and engine.
type Backend struct {
	Project string
	Store   *fsstore.Store
	Queue   *psqueue.Queue
	Engine  *engine.Engine
}

// Open reads GOOGLE_CLOUD_PROJECT and the engine's settings (engine.ConfigFromEnv) from
// getenv and connects to Firestore and Pub/Sub (their emulators when the emulator host
// variables are set). Close releases them.
func Open(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Backend, error) {
	project := getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		return nil, errors.New("GOOGLE_CLOUD_PROJECT is not set")
	}
	cfg, err := engine.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("backend: %w", err)
	}
	return &Backend{Project: project, Store: st, Queue: q, Engine: engine.New(st, q, cfg, nil, log)}, nil
}

// Close releases the queue and the store.
func (b *Backend) Close() {
	b.Queue.Close()
	b.Store.Close()
}
