package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
)

// The targets FUNCTION_TARGET may name.
const (
	TargetDispatch     = "Dispatch"
	TargetAdvance      = "Advance"
	TargetAlerts       = "Alerts"
	TargetSlackActions = "SlackActions"
)

// Targets lists every target, in the order the docs give them.
var Targets = []string{TargetDispatch, TargetAdvance, TargetAlerts, TargetSlackActions}

// NewHandler builds the HTTP handler of one target from the environment (getenv), with its
// clients, once. The returned function releases them (for SlackActions, after the clicks in
// flight are done): call it at shutdown. What each target reads:
//
//   - all: GOOGLE_CLOUD_PROJECT; the engine's UPDRAFT_LEASE, UPDRAFT_REPUBLISH_AFTER and
//     UPDRAFT_START_GRACE (engine.ConfigFromEnv); FIRESTORE_EMULATOR_HOST and
//     PUBSUB_EMULATOR_HOST only locally.
//   - Dispatch: UPDRAFT_REGION and UPDRAFT_WORKER_JOB_PREFIX (runjobs.ConfigFromEnv;
//     UPDRAFT_CLOUDRUN_EMULATOR_HOST locally); the warm runner's UPDRAFT_RUNNER_TOPIC,
//     UPDRAFT_RUNNER_SHAPE, UPDRAFT_RUNNER_CLASSES and UPDRAFT_RUNNER_MAX_TIMEOUT
//     (runjobs.RunnerConfigFromEnv; no topic, no runner); Secret Manager (UPDRAFT_SECRETMANAGER_EMULATOR_HOST
//     locally) and whatever the inline task types read (UPDRAFT_SLACK_API_URL,
//     BIGQUERY_EMULATOR_HOST, …) through the same getenv; K_REVISION (set by Cloud Run) names
//     the inline worker.
//   - Alerts: UPDRAFT_UI_URL, UPDRAFT_SLACK_API_URL, UPDRAFT_ALERT_DIGEST_* (alerts.ConfigFromEnv)
//     and Secret Manager for the Slack connections.
//   - SlackActions: see SlackActions.
//
// An unknown target or a missing setting is an error that says which.
func NewHandler(ctx context.Context, target string, getenv func(string) string, log *slog.Logger) (http.Handler, func(), error) {
	if log == nil {
		log = slog.Default()
	}
	switch target {
	case TargetSlackActions:
		h, closeFn, err := SlackActions(ctx, getenv, log)
		if err != nil {
			return nil, nil, err
		}
		return h, closeFn, nil
	case TargetDispatch, TargetAdvance, TargetAlerts:
	default:
		return nil, nil, fmt.Errorf("functions: FUNCTION_TARGET=%q names no function; use one of %v", target, Targets)
	}
	b, err := openBackends(ctx, target, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	var h Handle
	switch target {
	case TargetDispatch:
		d, err := b.dispatcher(ctx, getenv)
		if err != nil {
			b.close()
			return nil, nil, err
		}
		h = d.Handle
	case TargetAdvance:
		h = Advance(b.eng)
	case TargetAlerts:
		a, err := b.alerter(ctx, getenv)
		if err != nil {
			b.close()
			return nil, nil, err
		}
		h = Alerts(a)
	}
	return Push(target, h, log), b.close, nil
}

// backends are the clients a Pub/Sub target shares, released in reverse order.
type backends struct {
	st      *fsstore.Store
	q       *psqueue.Queue
	eng     *engine.Engine
	log     *slog.Logger
	closers []func()
}

func openBackends(ctx context.Context, target string, getenv func(string) string, log *slog.Logger) (*backends, error) {
	bk, err := backend.Open(ctx, getenv, log)
	if err != nil {
		return nil, fmt.Errorf("functions: %s: %w", target, err)
	}
	b := &backends{st: bk.Store, q: bk.Queue, eng: bk.Engine, log: log}
	b.closers = []func(){bk.Close}
	return b, nil
}

func (b *backends) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// secrets opens Secret Manager for the task types and alerts (nil on the emulators without
// the Secret Manager stand-in, as locally).
func (b *backends) secrets(ctx context.Context, getenv func(string) string) (func() taskrun.SecretResolver, error) {
	newResolver, closeSecrets, err := secrets.Factory(ctx, getenv("GOOGLE_CLOUD_PROJECT"), getenv)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	b.closers = append(b.closers, closeSecrets)
	return newResolver, nil
}

// dispatcher builds Dispatch's parts as the local stack builds its dispatcher's: the
// built-in task types, a taskrun.Worker over the engine for inline types, and the worker jobs
// (runjobs) in place of subprocesses.
func (b *backends) dispatcher(ctx context.Context, getenv func(string) string) (*Dispatcher, error) {
	rcfg, err := runjobs.ConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("functions: Dispatch: %w", err)
	}
	jobs, err := runjobs.Open(ctx, rcfg)
	if err != nil {
		return nil, fmt.Errorf("functions: Dispatch: %w", err)
	}
	b.closers = append(b.closers, func() { jobs.Close() })
	b.eng.SetExecutor(jobs)
	newResolver, err := b.secrets(ctx, getenv)
	if err != nil {
		return nil, err
	}
	var runner RunnerStarter
	if ccfg, ok, err := runjobs.RunnerConfigFromEnv(getenv); err != nil {
		return nil, fmt.Errorf("functions: Dispatch: %w", err)
	} else if ok {
		r, err := runjobs.OpenRunner(ctx, ccfg)
		if err != nil {
			return nil, fmt.Errorf("functions: Dispatch: %w", err)
		}
		b.closers = append(b.closers, func() { r.Close() })
		runner = r
	}
	reg := tasktypes.WithQueue(b.q)
	host, _ := os.Hostname()
	name := host + ":" + strconv.Itoa(os.Getpid())
	return &Dispatcher{
		Engine: b.eng, Registry: reg, Jobs: jobs, Runner: runner, Log: b.log,
		Worker: &taskrun.Worker{
			Engine: b.eng, Registry: reg, Name: "dispatch:" + name,
			// An inline run's liveness is its lease: no executor knows this reference, so
			// once renewals stop (the instance died) the tick fails the attempt as lost.
			ExecutorRef: "function:" + getenv("K_REVISION") + ":" + name,
			LogDir:      getenv("UPDRAFT_LOG_DIR"), Stdout: os.Stdout, Log: b.log,
			NewResolver: newResolver, Getenv: getenv,
		},
	}, nil
}

// alerter builds the alerter as the local stack and the scheduler do (backend.NewAlerter).
func (b *backends) alerter(ctx context.Context, getenv func(string) string) (*alerts.Alerter, error) {
	acfg, err := alerts.ConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("functions: Alerts: %w", err)
	}
	newResolver, err := b.secrets(ctx, getenv)
	if err != nil {
		return nil, err
	}
	return backend.NewAlerter(b.st, b.eng, newResolver, acfg, b.log), nil
}

// Lazy is NewHandler built on the first request rather than at start, for the Functions
// Framework's declarative registration (package functions/declared), which registers
// handlers before main runs. A failed build answers 500 (Pub/Sub redelivers) and is tried
// again on the next request; the clients then live as long as the process.
func Lazy(target string, getenv func(string) string, log *slog.Logger) http.Handler {
	return &lazy{target: target, getenv: getenv, log: log}
}

type lazy struct {
	target string
	getenv func(string) string
	log    *slog.Logger

	mu sync.Mutex
	h  http.Handler
}

func (l *lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	if l.h == nil {
		h, _, err := NewHandler(context.WithoutCancel(r.Context()), l.target, l.getenv, l.log)
		if err != nil {
			l.mu.Unlock()
			l.log.Error("could not build the function; answering 500", "function", l.target, "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		l.h = h
	}
	h := l.h
	l.mu.Unlock()
	h.ServeHTTP(w, r)
}
