package emulators

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// SaveEvery is how often a Keeper saves Firestore's documents by default.
const SaveEvery = 10 * time.Second

// Keeper looks after the emulators a local stack (`updraft dev`) started itself: a JVM that exits on its own
// is started again on the same ports (Firestore with its latest snapshot), and Firestore's
// documents are saved (Emulator.Export) every SaveEvery and by Save, so they
// survive a restart of the emulator or of `updraft dev`. Emulators it did not start (no
// process, no data dir) are left alone.
type Keeper struct {
	Set     *Set
	Project string
	// SaveEvery is how often Firestore is saved (default SaveEvery).
	SaveEvery time.Duration
	Log       *slog.Logger

	mu        sync.Mutex
	lastSaved time.Time
	saveErr   bool // the last save failed (logged once until one succeeds)
	restarts  int
}

// Restarts is how many emulator JVMs the Keeper started again.
func (k *Keeper) Restarts() int { k.mu.Lock(); defer k.mu.Unlock(); return k.restarts }

// Run keeps the emulators until ctx ends. Stop the Set only after Run has returned.
func (k *Keeper) Run(ctx context.Context) {
	every := k.SaveEvery
	if every <= 0 {
		every = SaveEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		k.mu.Lock()
		fs, ps := k.Set.Firestore, k.Set.PubSub
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-fs.Done():
			k.restart(ctx, &k.Set.Firestore, "Firestore")
		case <-ps.Done():
			k.restart(ctx, &k.Set.PubSub, "Pub/Sub")
		case <-t.C:
			k.save(ctx)
		}
	}
}

func (k *Keeper) restart(ctx context.Context, slot **Emulator, name string) {
	k.mu.Lock()
	old := *slot
	saved := k.lastSaved
	k.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	what := ""
	if name == "Firestore" && old.DataDir() != "" {
		what = " with the documents saved " + time.Since(saved).Round(time.Second).String() + " ago"
		if saved.IsZero() {
			what = " with the documents of its last save"
		}
	}
	k.Log.Error("the "+name+" emulator exited on its own: starting it again on "+old.Host+what, "pid", old.PID(), "log", old.LogPath)
	ne, err := old.Restart(ctx)
	if err != nil {
		if ctx.Err() == nil {
			k.Log.Error("could not start the "+name+" emulator again: stop `updraft dev` and start it again", "error", err)
		}
		// Keep the dead one in place; Run would spin on its closed Done, so wait for ctx.
		<-ctx.Done()
		return
	}
	k.mu.Lock()
	*slot = ne
	k.restarts++
	k.mu.Unlock()
	k.Log.Info("the "+name+" emulator is running again", "host", ne.Host, "pid", ne.PID())
}

func (k *Keeper) save(ctx context.Context) {
	if err := k.Save(ctx); err != nil && ctx.Err() == nil {
		k.mu.Lock()
		first := !k.saveErr
		k.saveErr = true
		k.mu.Unlock()
		if first {
			k.Log.Warn("saving Firestore's documents failed; retrying every "+k.SaveEvery.String(), "error", err)
		}
	}
}

// Save writes a snapshot of the project's documents now (nothing when Firestore has no data
// dir). Call it once more after the stack stopped and before stopping the emulators.
func (k *Keeper) Save(ctx context.Context) error {
	k.mu.Lock()
	fs := k.Set.Firestore
	k.mu.Unlock()
	if fs.DataDir() == "" {
		return nil
	}
	select {
	case <-fs.Done():
		return nil // died: Run restarts it from the last snapshot
	default:
	}
	if err := fs.Export(ctx, k.Project); err != nil {
		return err
	}
	k.mu.Lock()
	if k.saveErr {
		k.Log.Info("saving Firestore's documents works again")
	}
	k.saveErr = false
	k.lastSaved = time.Now()
	k.mu.Unlock()
	return nil
}
