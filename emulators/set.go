package emulators

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Environment variables read by the Google Cloud client libraries.
const (
	FirestoreHostEnv = "FIRESTORE_EMULATOR_HOST"
	PubSubHostEnv    = "PUBSUB_EMULATOR_HOST"
)

// Set is both emulators.
type Set struct {
	Firestore, PubSub *Emulator
}

// StartAll starts both emulators in parallel and waits until both answer.
// logDir receives their output (firestore.log, pubsub.log); "" means a new
// temporary directory. On failure it stops whatever had started.
func StartAll(ctx context.Context, logDir string) (*Set, error) {
	inst, err := resolveAll()
	if err != nil {
		return nil, err
	}
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "updraft-emulators-"); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg           sync.WaitGroup
		s            Set
		fsErr, psErr error
	)
	// If one fails, cancel makes the other give up early.
	wg.Go(func() {
		if s.Firestore, fsErr = start(ctx, inst, firestoreSpec(inst), logDir); fsErr != nil {
			cancel()
		}
	})
	wg.Go(func() {
		if s.PubSub, psErr = start(ctx, inst, pubsubSpec(inst), logDir); psErr != nil {
			cancel()
		}
	})
	wg.Wait()
	if fsErr != nil || psErr != nil {
		err := errors.Join(s.Stop(), fsErr, psErr)
		return nil, fmt.Errorf("starting emulators (logs in %s): %w", logDir, err)
	}
	return &s, nil
}

// FromEnv returns a Set describing already-running emulators when both
// FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are set. Its emulators
// have no process: Stop does nothing. It does not check that they answer;
// use WaitReady for that.
func FromEnv() (*Set, bool) {
	fs, ps := os.Getenv(FirestoreHostEnv), os.Getenv(PubSubHostEnv)
	if fs == "" || ps == "" {
		return nil, false
	}
	return &Set{
		Firestore: &Emulator{Name: "firestore", Host: fs},
		PubSub:    &Emulator{Name: "pubsub", Host: ps},
	}, true
}

// Env returns the environment variables clients need to use the emulators:
// FIRESTORE_EMULATOR_HOST=... and PUBSUB_EMULATOR_HOST=..., nothing else.
func (s *Set) Env() []string {
	return []string{
		FirestoreHostEnv + "=" + s.Firestore.Host,
		PubSubHostEnv + "=" + s.PubSub.Host,
	}
}

// Apply sets Env in this process (os.Setenv) so that Google Cloud clients
// created afterwards use the emulators.
func (s *Set) Apply() {
	os.Setenv(FirestoreHostEnv, s.Firestore.Host)
	os.Setenv(PubSubHostEnv, s.PubSub.Host)
}

// WaitReady waits until both emulators answer (see Emulator.WaitReady).
func (s *Set) WaitReady(ctx context.Context) error {
	var wg sync.WaitGroup
	var fsErr, psErr error
	wg.Go(func() { fsErr = s.Firestore.WaitReady(ctx) })
	wg.Go(func() { psErr = s.PubSub.WaitReady(ctx) })
	wg.Wait()
	return errors.Join(fsErr, psErr)
}

// Stop stops both emulators (in parallel); see Emulator.Stop. It is
// idempotent, and a no-op for a nil Set or one from FromEnv.
func (s *Set) Stop() error {
	if s == nil {
		return nil
	}
	var wg sync.WaitGroup
	var fsErr, psErr error
	wg.Go(func() { fsErr = s.Firestore.Stop() })
	wg.Go(func() { psErr = s.PubSub.Stop() })
	wg.Wait()
	return errors.Join(fsErr, psErr)
}
