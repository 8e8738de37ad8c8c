package emulators

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FirestoreOptions are how the Firestore emulator keeps its documents.
type FirestoreOptions struct {
	// DataDir, when set, holds snapshots of the emulator's documents: the latest one there
	// is imported when the emulator starts (or restarts), and Export writes a new one. The
	// emulator itself keeps everything in memory: what was written after the last Export is
	// lost if its JVM dies. "" means in memory only.
	DataDir string
}

// StartFirestoreWith is StartFirestore with options.
func StartFirestoreWith(ctx context.Context, logDir string, opt FirestoreOptions) (*Emulator, error) {
	inst, err := resolveAll()
	if err != nil {
		return nil, err
	}
	sp, err := firestoreSpecWith(inst, opt)
	if err != nil {
		return nil, err
	}
	return start(ctx, inst, sp, logDir)
}

// StartAllWith is StartAll with the Firestore emulator's options.
func StartAllWith(ctx context.Context, logDir string, opt FirestoreOptions) (*Set, error) {
	if opt.DataDir == "" {
		return StartAll(ctx, logDir)
	}
	inst, err := resolveAll()
	if err != nil {
		return nil, err
	}
	if logDir == "" {
		if logDir, err = os.MkdirTemp("", "updraft-emulators-"); err != nil {
			return nil, err
		}
	}
	sp, err := firestoreSpecWith(inst, opt)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg           sync.WaitGroup
		s            Set
		fsErr, psErr error
	)
	wg.Go(func() {
		if s.Firestore, fsErr = start(ctx, inst, sp, logDir); fsErr != nil {
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

func firestoreSpecWith(inst *installation, opt FirestoreOptions) (spec, error) {
	sp := firestoreSpec(inst)
	if opt.DataDir != "" {
		d, err := filepath.Abs(opt.DataDir)
		if err != nil {
			return sp, err
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return sp, fmt.Errorf("firestore emulator data: %w", err)
		}
		sp.dataDir = d
	}
	return sp, nil
}

// DataDir is where this Firestore emulator keeps its snapshots ("" if none).
func (e *Emulator) DataDir() string {
	if e == nil {
		return ""
	}
	return e.dataDir
}

// latestFile names, inside a data dir, the latest complete snapshot. It is replaced
// atomically (rename) once a snapshot is complete, so a crash mid-export leaves the previous
// one in place.
const latestFile = "LATEST"

// latestSnapshot returns the metadata file of the latest complete snapshot in dir, or "".
func latestSnapshot(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, latestFile))
	if err != nil {
		return ""
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) {
		return ""
	}
	meta := filepath.Join(dir, name, name+".overall_export_metadata")
	if !isFile(meta) {
		return ""
	}
	return meta
}

// exportMu serialises exports per data dir (a periodic export and the one at shutdown).
var exportMu sync.Map // data dir → *sync.Mutex

// Export writes a snapshot of project's documents into the emulator's data dir (see
// FirestoreOptions) through the emulator's export endpoint, then makes it the one imported
// at the next start and removes the older ones. It fails for an emulator without a data dir.
func (e *Emulator) Export(ctx context.Context, project string) error {
	if e == nil || e.dataDir == "" {
		return errors.New("firestore emulator: no data dir to export into")
	}
	m, _ := exportMu.LoadOrStore(e.dataDir, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	defer mu.Unlock()
	name := "snap-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	body := fmt.Sprintf(`{"database":"projects/%s/databases/(default)","export_directory":%q,"export_name":%q}`, project, e.dataDir, name)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.Host+"/emulator/v1/projects/"+project+":export", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return fmt.Errorf("firestore emulator at %s: export: %w", e.Host, err)
	}
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		os.RemoveAll(filepath.Join(e.dataDir, name))
		return fmt.Errorf("firestore emulator at %s: export: %s %s", e.Host, resp.Status, bytes.TrimSpace(out))
	}
	if !isFile(filepath.Join(e.dataDir, name, name+".overall_export_metadata")) {
		return fmt.Errorf("firestore emulator at %s: export wrote no %s.overall_export_metadata in %s", e.Host, name, e.dataDir)
	}
	tmp := filepath.Join(e.dataDir, latestFile+".tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(e.dataDir, latestFile)); err != nil {
		return err
	}
	olds, _ := filepath.Glob(filepath.Join(e.dataDir, "snap-*"))
	for _, o := range olds {
		if filepath.Base(o) != name {
			os.RemoveAll(o)
		}
	}
	return nil
}

// Restart starts a new JVM for an emulator this package started whose process has exited
// (it died, was killed, or was stopped), on the same ports, and waits until it answers. A
// Firestore emulator with a data dir imports its latest snapshot. The returned Emulator
// replaces e.
func (e *Emulator) Restart(ctx context.Context) (*Emulator, error) {
	if e == nil || e.inst == nil {
		return nil, errors.New("emulators: restart: not an emulator this process started")
	}
	select {
	case <-e.done:
	default:
		return nil, fmt.Errorf("%s emulator (pid %d) is still running: stop it before restarting it", e.Name, e.PID())
	}
	// The old JVM's sockets are closed once it is reaped; a bind can still fail for a moment
	// (e.g. a connection in TIME_WAIT on some systems), so try again for a bounded time.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ne, retry, err := startOn(ctx, e.inst, e.sp, e.logDir, e.ports, false)
		if err == nil {
			return ne, nil
		}
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("restart %s emulator on %s: %w", e.Name, e.Host, err)
		}
	}
}
