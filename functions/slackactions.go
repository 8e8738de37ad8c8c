package functions

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/slackactions"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
)

// SlackActions is the Slack interactivity function (the Slack app's Request URL): the
// alerts' Retry button, served by the same handler as the scheduler's POST /slack/actions.
// It is public on GCP (Slack can't send an OIDC token); Slack's signature is what
// authenticates a request. It reads GOOGLE_CLOUD_PROJECT, UPDRAFT_SLACK_API_URL (optional)
// and the engine's settings (engine.ConfigFromEnv) from getenv, and the Slack app's signing
// secret and bot token from Secret Manager, once. The returned function waits for clicks
// in flight and releases the clients: call it at shutdown.
//
// The work after the acknowledgement runs in the background, so on Cloud Run the service
// needs CPU outside requests (--no-cpu-throttling).
func SlackActions(ctx context.Context, getenv func(string) string, log *slog.Logger) (http.HandlerFunc, func(), error) {
	b, err := backend.Open(ctx, getenv, log)
	if err != nil {
		return nil, nil, fmt.Errorf("functions: SlackActions: %w", err)
	}
	sm, err := secrets.Open(ctx, b.Project, getenv)
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("functions: SlackActions: %w", err)
	}
	defer sm.Close() // the credentials are read once, now
	h, err := slackactions.FromSecrets(ctx, sm, slackactions.Config{
		APIURL: getenv(slackpost.EnvSlackAPIURL), Engine: b.Engine, Access: access.New(b.Store, nil), Log: log,
	})
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("functions: SlackActions: %w", err)
	}
	return h.ServeHTTP, func() { h.Wait(); b.Close() }, nil
}
