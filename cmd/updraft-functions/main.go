// Command updraft-functions serves one of Updraft's functions, the one FUNCTION_TARGET names,
// through the Functions Framework on PORT (default 8080), on all interfaces as Cloud Run
// requires (HOST=127.0.0.1 locally). Each target is its own Cloud Run service, fed by a push
// subscription that Terraform owns (docs/functions.md):
//
//   - Dispatch: subscription updraft-tasks-dispatch (tasks topic)
//   - Advance: subscription updraft-events-advance (events topic)
//   - Alerts: subscription updraft-events-alerts (events topic; ack deadline ≥ 120 s)
//   - SlackActions: the Slack app's interactivity Request URL (public; Slack signs requests)
//
// Environment:
//
//   - FUNCTION_TARGET (required): Dispatch, Advance, Alerts or SlackActions.
//   - PORT, HOST: where to listen.
//   - GOOGLE_CLOUD_PROJECT (required): the project of Firestore, Pub/Sub, Secret Manager and
//     the worker jobs.
//   - UPDRAFT_LEASE, UPDRAFT_REPUBLISH_AFTER, UPDRAFT_START_GRACE: the engine's settings, the
//     same values as the scheduler's and the workers'.
//   - Dispatch: UPDRAFT_REGION (required on GCP: the worker jobs' region) and
//     UPDRAFT_WORKER_JOB_PREFIX (default updraft-worker: the job of resource class C is
//     updraft-worker-C); UPDRAFT_RUNNER_TOPIC (the warm runner's topic; unset: no runner),
//     UPDRAFT_RUNNER_SHAPE, UPDRAFT_RUNNER_CLASSES, UPDRAFT_RUNNER_MAX_TIMEOUT (what fits it;
//     docs/execution.md); what inline task types read (UPDRAFT_SLACK_API_URL, …).
//   - Alerts: UPDRAFT_UI_URL, UPDRAFT_SLACK_API_URL, UPDRAFT_ALERT_DIGEST_CHANNEL,
//     UPDRAFT_ALERT_DIGEST_EVERY, UPDRAFT_ALERT_DIGEST_CONNECTION.
//   - SlackActions: UPDRAFT_SLACK_API_URL; the Slack app's secrets in Secret Manager.
//   - Dispatch, Advance, Alerts: UPDRAFT_OIDC_AUDIENCE and UPDRAFT_OIDC_INVOKERS, the push
//     subscriptions' OIDC token audience and service account (docs/auth.md); UPDRAFT_AUTH=off
//     only locally.
//   - Locally only: FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
//     UPDRAFT_SECRETMANAGER_EMULATOR_HOST, UPDRAFT_CLOUDRUN_EMULATOR_HOST.
//
// The handler is built at start (functions.NewHandler), so a missing setting stops the
// service at once with a message saying which. Logs are JSON lines on stderr in Cloud
// Logging's field names; inline attempts' own log lines go to stdout, as a worker's do.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/updraft-dev/updraft/functions"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/cloudlog"
)

func main() {
	log := cloudlog.New(os.Stderr)
	if err := run(log); err != nil {
		log.Error("updraft-functions stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	target := os.Getenv("FUNCTION_TARGET")
	if target == "" {
		return errors.New("FUNCTION_TARGET is not set: Dispatch, Advance, Alerts or SlackActions")
	}
	h, release, err := functions.NewHandler(ctx, target, os.Getenv, log)
	if err != nil {
		return err
	}
	defer release()
	// The push subscriptions' OIDC tokens: only the push invoker's, for this service's
	// audience. SlackActions is the exception: Slack can't send one, and its request
	// signature is checked by the handler itself.
	if target != functions.TargetSlackActions {
		guard, err := auth.InvokersFromEnv(ctx, os.Getenv, log)
		if err != nil {
			return err
		}
		h = guard.Middleware(h)
	}
	//
	// Registered without a name, the handler is what the Framework serves at "/" for any
	// FUNCTION_TARGET: this binary does not import functions/declared, so no name shadows it.
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/", h.ServeHTTP); err != nil {
		return err
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	served := make(chan error, 1)
	go func() { served <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	log.Info("updraft-functions serving", "function", target, "port", port)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return nil // release waits for work in flight (SlackActions' clicks)
	}
}
