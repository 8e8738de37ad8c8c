package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/local"
)

// devDataDir is where `updraft dev` keeps Firestore's documents between runs.
func (a *App) devDataDir() string { return filepath.Join(a.home(), "firestore-data") }

// devEmulators returns the emulators `updraft dev` runs on: the ones named by the
// environment (or a running dev), else started now with Firestore's documents kept in
// devDataDir, emptied first when reset.
func (a *App) devEmulators(ctx context.Context, reset bool) (*emulators.Set, error) {
	if _, ok := emulators.FromEnv(); ok || a.readDevState() != nil {
		if reset {
			return nil, fmt.Errorf("--reset empties the emulators `updraft dev` starts itself; these are FIRESTORE_EMULATOR_HOST's and PUBSUB_EMULATOR_HOST's: restart them instead")
		}
		return a.emulatorSet(ctx)
	}
	if err := emulators.Check(); err != nil {
		return nil, err
	}
	dir := a.devDataDir()
	if reset {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("reset: %w", err)
		}
		fmt.Fprintf(a.Stderr, "starting clean: removed %s\n", dir)
	}
	fmt.Fprintln(a.Stderr, "starting the Firestore and Pub/Sub emulators…")
	return emulators.StartAllWith(ctx, filepath.Join(a.home(), "emulators"), emulators.FirestoreOptions{DataDir: dir})
}

// keepEmulators starts a Keeper over set (restarts of dead JVMs, Firestore saved every
// emulators.SaveEvery) and returns the function to call before stopping set: it stops the
// Keeper and saves Firestore one last time.
func keepEmulators(ctx context.Context, a *App, set *emulators.Set, project string) func() {
	k := &emulators.Keeper{Set: set, Project: project, SaveEvery: devSaveEvery(a), Log: a.logger()}
	kctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); k.Run(kctx) }()
	return func() {
		cancel()
		<-done
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := k.Save(sctx); err != nil {
			fmt.Fprintf(a.Stderr, "saving Firestore's documents at exit failed (the last periodic save is kept): %v\n", err)
		}
	}
}

// devRedeploy is what the local stack's Healer calls when Firestore comes back empty:
// deploy the DAG folder again and grant the dev identity admin again.
func devRedeploy(a *App, stack *local.Stack, dagDir string) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		res, err := a.loadDAGs([]string{dagDir})
		if err != nil {
			return 0, err
		}
		if err := deployAll(ctx, a, stack.Engine, res, false); err != nil {
			return 0, err
		}
		if _, err := access.New(stack.Store, nil).Grant(ctx, devEmail(a), access.Admin, access.Actor{Who: "updraft dev", From: "cli"}); err != nil {
			return len(res.DAGs), fmt.Errorf("grant the dev identity admin: %w", err)
		}
		return len(res.DAGs), nil
	}
}

// devStateWhere says where the dev stack's Firestore documents are kept, for the banner.
func devStateWhere(a *App, set *emulators.Set) string {
	if d := set.Firestore.DataDir(); d != "" {
		return "Firestore saved to " + d + " every " + devSaveEvery(a).String() + " and at Ctrl-C"
	}
	return "in the emulators' memory (" + set.Firestore.Host + ", not started by updraft dev)"
}

// devSaveEvery is how often `updraft dev` saves Firestore: UPDRAFT_DEV_SAVE_EVERY (a Go
// duration), else emulators.SaveEvery.
func devSaveEvery(a *App) time.Duration {
	if v, err := time.ParseDuration(a.Getenv("UPDRAFT_DEV_SAVE_EVERY")); err == nil && v > 0 {
		return v
	}
	return emulators.SaveEvery
}
