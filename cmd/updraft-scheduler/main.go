// Command updraft-scheduler is the tick service: Cloud Scheduler POSTs /tick every minute.
// It reads GOOGLE_CLOUD_PROJECT and PORT (default 8080) and listens on all interfaces, as
// Cloud Run requires; run it locally with HOST=127.0.0.1. When the Slack app's credentials
// are in Secret Manager (docs/slack-app.md) it also serves POST /slack/actions, the alerts'
// Retry button (UPDRAFT_SLACK_API_URL points it at another Slack Web API, e.g. the fake).
//
// GET /healthz (and /health) checks Firestore and Pub/Sub: 200 {"store":"ok","queue":"ok"},
// or 503 with each failing component's reason; GET /health/live is liveness only.
//
// Every endpoint but the health routes and /slack/actions takes only a Google OIDC token whose audience is
// UPDRAFT_OIDC_AUDIENCE and whose email is one of UPDRAFT_OIDC_INVOKERS (docs/auth.md);
// UPDRAFT_AUTH=off turns that off for local runs, and is refused on Cloud Run. On GCP
// (K_SERVICE set) the lost-worker check asks the Cloud Run Admin API about the worker jobs'
// executions in UPDRAFT_REGION.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/cloudlog"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/slackactions"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
	"github.com/updraft-dev/updraft/scheduler/service"
)

func main() {
	log := cloudlog.New(os.Stderr)
	if err := run(log); err != nil {
		log.Error("scheduler stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := backend.Open(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	defer b.Close()
	project, st, q, eng := b.Project, b.Store, b.Queue, b.Engine
	// Nothing else reads the dead-letter subscriptions on GCP: each tick drains them (the
	// local stack streams them instead and does not set this).
	eng.SetDeadLetters(q)
	// The lost-worker check asks Cloud Run whether an attempt's job execution still runs.
	if x, err := workerJobs(ctx, log); err != nil {
		return err
	} else if x != nil {
		defer x.Close()
		eng.SetExecutor(x)
	}
	acfg, err := alerts.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	newResolver, closeSecrets, err := secrets.Factory(ctx, project, os.Getenv)
	if err != nil {
		return err
	}
	defer closeSecrets()
	alerter := backend.NewAlerter(st, eng, newResolver, acfg, log)
	var last engine.TickReport
	h := &service.Handler{
		Tick: func(ctx context.Context) (engine.TickReport, error) {
			rep, err := eng.Tick(ctx)
			// The alerts' digest and SLA misses ride on the same tick; their failure is
			// logged and never fails the tick.
			if _, aerr := alerter.Tick(ctx, time.Now()); aerr != nil {
				log.Warn("alerts tick failed", "error", aerr)
			}
			if err == nil {
				last = rep
				log.Info("tick", "runs_created", rep.RunsCreated, "republished", rep.Republished, "retried", rep.Retried,
					"dead_lettered", rep.DeadLettered, "reads", rep.Reads, "duration_ms", rep.Duration.Milliseconds())
			}
			return rep, err
		},
		Status: func() any {
			return map[string]any{"project": project, "last_tick": last,
				"skipped_intervals": eng.Stats.SkippedIntervals.Load(), "late_ticks": eng.Stats.LateTicks.Load()}
		},
		Probes: b.Probes(),
		Counters: func() map[string]float64 {
			return map[string]float64{
				"updraft_dagruns_created_total":      float64(eng.Stats.RunsCreated.Load()),
				"updraft_tasks_queued_total":         float64(eng.Stats.TasksQueued.Load()),
				"updraft_attempts_republished_total": float64(eng.Stats.Republished.Load()),
				"updraft_intervals_skipped_total":    float64(eng.Stats.SkippedIntervals.Load()),
				"updraft_late_ticks_total":           float64(eng.Stats.LateTicks.Load()),
				"updraft_runs_swept_total":           float64(eng.Stats.RunsSwept.Load()),
			}
		},
	}
	// Everything but the Slack hook takes only Google OIDC tokens from the configured
	// invokers (Cloud Scheduler's service account); UPDRAFT_AUTH=off is for local runs only.
	guard, err := auth.InvokersFromEnv(ctx, os.Getenv, log)
	if err != nil {
		return err
	}
	h.Guard = guard.Middleware
	actions := slackActions(ctx, project, eng, st, log)
	if actions != nil {
		h.SlackActions = actions
		defer actions.Wait() // clicks acknowledged before a shutdown finish their work
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h.Mux(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	fmt.Fprintf(os.Stderr, "updraft-scheduler listening on %s (project %s)\n", ln.Addr(), project)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// workerJobs opens the Cloud Run Admin API client the lost-worker check asks about job
// executions. On GCP (K_SERVICE set) it is required; elsewhere it is used when a region or
// the Cloud Run stand-in is configured, and otherwise every expired lease counts as lost.
func workerJobs(ctx context.Context, log *slog.Logger) (*runjobs.Executor, error) {
	if os.Getenv("K_SERVICE") == "" && os.Getenv(runjobs.EnvRegion) == "" && os.Getenv(runjobs.EnvEmulatorHost) == "" {
		log.Info("no Cloud Run to ask about workers: an expired lease counts as a lost worker")
		return nil, nil
	}
	cfg, err := runjobs.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	return runjobs.Open(ctx, cfg)
}

// slackActions returns the handler of POST /slack/actions, or nil when the Slack app is not
// set up (or its credentials can't be read: the tick must go on without the button).
func slackActions(ctx context.Context, project string, eng *engine.Engine, st *fsstore.Store, log *slog.Logger) *slackactions.Handler {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" && os.Getenv("UPDRAFT_SECRETMANAGER_EMULATOR_HOST") == "" {
		log.Info("POST /slack/actions is off: on the emulators without the Secret Manager stand-in")
		return nil
	}
	sm, err := secrets.Open(ctx, project, os.Getenv)
	if err != nil {
		log.Error("POST /slack/actions is off: Secret Manager unreachable", "error", err)
		return nil
	}
	defer sm.Close() // the credentials are read once, now
	h, err := slackactions.FromSecrets(ctx, sm, slackactions.Config{
		APIURL: os.Getenv(slackpost.EnvSlackAPIURL), Engine: eng, Access: access.New(st, nil), Log: log,
	})
	switch {
	case errors.Is(err, slackactions.ErrNotConfigured):
		log.Info("POST /slack/actions is off: the Slack app is not set up", "reason", err.Error())
		return nil
	case err != nil:
		log.Error("POST /slack/actions is off", "error", err)
		return nil
	}
	return h
}
