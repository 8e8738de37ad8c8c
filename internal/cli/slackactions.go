package cli

import (
	"context"
	"log/slog"
	"os"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/slackactions"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
)

// devSlackSigningSecret is the local Slack app's signing secret, seeded into the Secret
// Manager stand-in by `updraft dev`: sign a block_actions payload with it to click an
// alert's Retry button against the local scheduler (docs/slack-app.md).
const devSlackSigningSecret = "local-dev-signing-secret"

// devSlackActions is the local scheduler's POST /slack/actions, with the credentials seeded
// into the stand-in and the fake Slack (local.Open has put their addresses in the
// environment).
func devSlackActions(ctx context.Context, project string, stack *local.Stack, log *slog.Logger) (*slackactions.Handler, error) {
	sm, err := secrets.Open(ctx, project, os.Getenv)
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	return slackactions.FromSecrets(ctx, sm, slackactions.Config{
		APIURL: os.Getenv(slackpost.EnvSlackAPIURL), Engine: stack.Engine, Access: access.New(stack.Store, nil), Log: log,
	})
}
