// Command updraft-ui is the UI service: the web pages and the REST API (/api/v1), behind IAP
// on Cloud Run. It listens on all interfaces (HOST narrows it, e.g. HOST=127.0.0.1 locally)
// and writes JSON logs in Cloud Logging's field names.
//
// It reads, once at start:
//
//	GOOGLE_CLOUD_PROJECT        the project (required)
//	PORT                        where to listen (default 8080); HOST, the interface (default all)
//	UPDRAFT_AUTH                "off" for the local dev identity (refused on Cloud Run); else
//	UPDRAFT_IAP_AUDIENCE        IAP's audience, /projects/NUMBER/locations/REGION/services/NAME
//	UPDRAFT_ID_TOKEN_AUDIENCE   audiences a bearer Google ID token may carry (the CLI), comma-separated
//	UPDRAFT_DEV_USER            with UPDRAFT_AUTH=off: the dev identity (default dev@localhost)
//	UPDRAFT_CSRF_SECRET         the key of the CSRF tokens; when unset, the Secret Manager secret
//	                            updraftsys-csrf-secret; when neither exists, a random key (a WARN says
//	                            so: instances then refuse each other's tokens, so set one when
//	                            Cloud Run may run more than one instance)
//	UPDRAFT_LOG_DIR             read attempts' logs from files (local); unset: from Cloud Logging
//	UPDRAFT_LOG_RETENTION       how long Cloud Logging keeps logs (Go duration, default 720h):
//	                            older attempts show "log expired"
//	UPDRAFT_SLACK_API_URL       with UPDRAFT_AUTH=off: the local fake Slack, shown at /slack
//
// and the engine's tuning variables (engine.ConfigFromEnv), and the emulator host variables
// (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, UPDRAFT_SECRETMANAGER_EMULATOR_HOST) when
// run against the emulators.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/logging/logadmin"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/cloudlog"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
	"github.com/updraft-dev/updraft/internal/web"
)

// csrfSecretName is the Secret Manager secret holding the CSRF key Terraform creates.
const csrfSecretName = "updraftsys-csrf-secret"

func main() {
	log := cloudlog.New(os.Stderr)
	if err := run(log); err != nil {
		log.Error("ui stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	guard, err := auth.UIFromEnv(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	_, dev := guard.(*auth.Dev)
	b, err := backend.Open(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	defer b.Close()
	project, st, eng := b.Project, b.Store, b.Engine
	logs, closeLogs, err := logReader(ctx, project)
	if err != nil {
		return err
	}
	defer closeLogs()
	secret, err := csrfSecret(ctx, project, log)
	if err != nil {
		return err
	}
	// The UI service has no DAG folder: DAGs arrive through the API (POST /api/v1/dags, which
	// `make deploy` calls), and the DAG list shows the import errors the last deploy stored.
	bundles, err := gcsbundles.NewCache(ctx, os.Getenv) // the code page shows a version's bundle files
	if err != nil {
		return err
	}
	c := console.New(console.Config{Engine: eng, Store: st, Access: access.New(st, nil), Logs: logs,
		ImportErrors: console.StoredImportErrors(st), Bundles: bundles})
	wcfg := web.Config{
		Console:    c,
		API:        api.New(c, api.Options{Identify: web.Identify, CSRFSecret: secret}),
		Auth:       guard.Middleware,
		CSRFSecret: secret,
		Dev:        dev,
		Log:        log,
	}
	if u := os.Getenv(slackpost.EnvSlackAPIURL); dev && u != "" {
		wcfg.SlackInbox = web.FakeSlackInbox(u)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: web.New(wcfg), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	log.Info("updraft-ui listening", "addr", ln.Addr().String(), "project", project, "dev", dev)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logReader reads attempts' logs from files when UPDRAFT_LOG_DIR is set, else from Cloud
// Logging.
func logReader(ctx context.Context, project string) (console.LogReader, func(), error) {
	if os.Getenv("UPDRAFT_LOG_DIR") != "" {
		return console.FileLogs{}, func() {}, nil
	}
	ret := 30 * 24 * time.Hour
	if v := os.Getenv("UPDRAFT_LOG_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, nil, fmt.Errorf("UPDRAFT_LOG_RETENTION=%q: want a positive Go duration such as 720h", v)
		}
		ret = d
	}
	client, err := logadmin.NewClient(ctx, project)
	if err != nil {
		return nil, nil, fmt.Errorf("open Cloud Logging: %w", err)
	}
	return &console.CloudLogs{Client: client, Retention: ret}, func() { client.Close() }, nil
}

// csrfSecret is UPDRAFT_CSRF_SECRET, else the Secret Manager secret updraftsys-csrf-secret,
// else random (with a warning: instances would not accept each other's tokens).
func csrfSecret(ctx context.Context, project string, log *slog.Logger) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv("UPDRAFT_CSRF_SECRET")); v != "" {
		return []byte(v), nil
	}
	onEmulators := os.Getenv("FIRESTORE_EMULATOR_HOST") != ""
	if !onEmulators || os.Getenv("UPDRAFT_SECRETMANAGER_EMULATOR_HOST") != "" {
		sm, err := secrets.Open(ctx, project, os.Getenv)
		if err == nil {
			defer sm.Close()
			v, err := sm.Access(ctx, csrfSecretName)
			if err == nil && strings.TrimSpace(v) != "" {
				return []byte(strings.TrimSpace(v)), nil
			}
			if err != nil && !errors.Is(err, secrets.ErrNotFound) {
				return nil, fmt.Errorf("read the CSRF key: %w", err)
			}
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	log.Warn("no CSRF key in UPDRAFT_CSRF_SECRET or the secret "+csrfSecretName+": using a random one; "+
		"with more than one instance, browser actions fail on the instances that did not hand out the page",
		"fix", "updraft secrets set "+csrfSecretName)
	return b, nil
}
