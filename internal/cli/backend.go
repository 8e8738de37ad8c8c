package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/api/option"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/psqueue"
)

// devState is what a running `updraft dev` leaves for the other commands to find it.
type devState struct {
	PID           int    `json:"pid"`
	Project       string `json:"project"`
	FirestoreHost string `json:"firestore_emulator_host"`
	PubSubHost    string `json:"pubsub_emulator_host"`
	LogDir        string `json:"log_dir"`
	Addr          string `json:"addr"`
	// StandIns holds the stand-ins' variables (Secret Manager, Slack, Cloud Run, BigQuery).
	StandIns []string `json:"stand_ins"`
	// DagDir is the DAG folder dev deploys and watches (its import errors show in dags list).
	DagDir string `json:"dag_dir,omitempty"`
}

func (a *App) home() string {
	if h := a.Getenv("UPDRAFT_HOME"); h != "" {
		return h
	}
	if h := a.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "updraft")
	}
	return filepath.Join(os.TempDir(), "updraft")
}

func (a *App) stateFile() string { return filepath.Join(a.home(), "dev.json") }

// readDevState returns the state of a live `updraft dev`, or nil.
func (a *App) readDevState() *devState {
	b, err := os.ReadFile(a.stateFile())
	if err != nil {
		return nil
	}
	var st devState
	if json.Unmarshal(b, &st) != nil || st.PID <= 0 || syscall.Kill(st.PID, 0) != nil {
		return nil
	}
	return &st
}

// backend is where the commands find Updraft's state.
type backend struct {
	Project string
	LogDir  string
	Env     []string // emulator hosts, when local
	// Hint is what a "did not answer" error suggests: where these backends come from.
	Hint string
}

// callWithin bounds each of the CLI's calls to Firestore and Pub/Sub (UPDRAFT_CALL_TIMEOUT,
// a Go duration, overrides it): a dead or stuck emulator fails a command with a message
// naming it instead of hanging it.
const callWithin = 10 * time.Second

func (a *App) callWithin() time.Duration {
	if v, err := time.ParseDuration(a.Getenv("UPDRAFT_CALL_TIMEOUT")); err == nil && v > 0 {
		return v
	}
	return callWithin
}

// clientOptions are the Firestore or Pub/Sub client options of the CLI's commands: per-call
// deadlines, and errors that name the service that did not answer.
func (a *App) clientOptions(service string, b backend) ([]option.ClientOption, error) {
	hint := b.Hint
	if hint == "" {
		v := "FIRESTORE_EMULATOR_HOST"
		if service == local.ServicePubSub {
			v = "PUBSUB_EMULATOR_HOST"
		}
		hint = "is it running? (" + v + " says it is there; start it, or run `make dev`)"
	}
	return local.ClientOptions(service, b.Project, a.callWithin(), hint)
}

var errNoBackend = errors.New("no Updraft to talk to: start the local stack with `make dev` (or `updraft dev`) " +
	"in another terminal, or set GOOGLE_CLOUD_PROJECT (with FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST for emulators)")

// backend finds the project: GOOGLE_CLOUD_PROJECT from the environment, else a running
// `updraft dev`. It sets the emulator variables in this process for the SDK clients.
func (a *App) backend() (backend, error) {
	if p := a.Getenv("GOOGLE_CLOUD_PROJECT"); p != "" {
		b := backend{Project: p, LogDir: a.Getenv("UPDRAFT_LOG_DIR"),
			Hint: "check GOOGLE_CLOUD_PROJECT, your network and `gcloud auth application-default login`"}
		for _, k := range []string{"FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"} {
			if v := a.Getenv(k); v != "" {
				b.Env = append(b.Env, k+"="+v)
				b.Hint = "" // per service: see clientOptions
			}
		}
		return b, b.apply()
	}
	if st := a.readDevState(); st != nil {
		b := backend{Project: st.Project, LogDir: st.LogDir, Env: append([]string{
			"FIRESTORE_EMULATOR_HOST=" + st.FirestoreHost, "PUBSUB_EMULATOR_HOST=" + st.PubSubHost,
		}, st.StandIns...), Hint: fmt.Sprintf("is `make dev` (pid %d) healthy? see http://%s/healthz", st.PID, st.Addr)}
		return b, b.apply()
	}
	return backend{}, errNoBackend
}

func (b backend) apply() error {
	for _, kv := range b.Env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// openStore connects to the backend's Firestore.
func (a *App) openStore(ctx context.Context) (*fsstore.Store, backend, error) {
	b, err := a.backend()
	if err != nil {
		return nil, b, err
	}
	opts, err := a.clientOptions(local.ServiceFirestore, b)
	if err != nil {
		return nil, b, err
	}
	st, err := fsstore.Open(ctx, b.Project, opts...)
	return st, b, err
}

// openEngine connects to the backend's Firestore and Pub/Sub.
func (a *App) openEngine(ctx context.Context) (*engine.Engine, func(), backend, error) {
	return a.openEngineLog(ctx, a.quietLogger())
}

// openEngineLog is openEngine with the engine's logger.
func (a *App) openEngineLog(ctx context.Context, log *slog.Logger) (*engine.Engine, func(), backend, error) {
	st, b, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, b, err
	}
	if len(b.Env) > 0 {
		// Firestore first (every command reads it; creating Pub/Sub's topics below would
		// otherwise be the first call): a dead Firestore emulator is the one named.
		if _, err := st.Ping(ctx, a.callWithin()); err != nil {
			st.Close()
			return nil, nil, b, err
		}
	}
	opts, err := a.clientOptions(local.ServicePubSub, b)
	if err != nil {
		st.Close()
		return nil, nil, b, err
	}
	q, err := psqueue.Open(ctx, b.Project, opts...)
	if err != nil {
		st.Close()
		return nil, nil, b, err
	}
	if len(b.Env) > 0 { // on the emulators the topics may not exist yet (on GCP Terraform owns them)
		if err := q.Ensure(ctx); err != nil {
			st.Close()
			q.Close()
			return nil, nil, b, err
		}
	}
	cfg, err := engine.ConfigFromEnv(a.Getenv)
	if err != nil {
		st.Close()
		q.Close()
		return nil, nil, b, err
	}
	eng := engine.New(st, q, cfg, a.Now, log)
	if len(b.Env) > 0 { // local: workers are processes on this machine
		eng.SetExecutor(local.Processes{})
	}
	return eng, func() { q.Close(); st.Close() }, b, nil
}
