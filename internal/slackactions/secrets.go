package slackactions

import (
	"context"
	"errors"
	"fmt"

	"github.com/updraft-dev/updraft/internal/secrets"
)

// Where the Slack app's credentials live in Secret Manager.
const (
	// SigningSecretName holds the app's signing secret, as it is.
	SigningSecretName = "updraftsys-slack-signing-secret"
	// BotConnection is the connection whose password is the bot token: secret
	// updraft-connections-slack, {"conn_type": "slack", "password": "xoxb-…"}.
	BotConnection = "slack"
)

// ErrNotConfigured means the Slack app's credentials are not in Secret Manager: the Retry
// button is not served (callers log it and go on without it).
var ErrNotConfigured = errors.New("slackactions: the Slack app's credentials are not in Secret Manager")

// LoadSecrets reads the signing secret and the bot token, once, at start.
func LoadSecrets(ctx context.Context, sm *secrets.Client) (signingSecret, botToken string, err error) {
	signingSecret, err = sm.Access(ctx, SigningSecretName)
	if errors.Is(err, secrets.ErrNotFound) {
		return "", "", fmt.Errorf("%w: %v (docs/slack-app.md says how)", ErrNotConfigured, err)
	}
	if err != nil {
		return "", "", fmt.Errorf("slackactions: read the signing secret: %w", err)
	}
	conn, err := secrets.NewResolver(sm).Conn(ctx, BotConnection)
	if errors.Is(err, secrets.ErrNotFound) {
		return "", "", fmt.Errorf("%w: %v (docs/slack-app.md says how)", ErrNotConfigured, err)
	}
	if err != nil {
		return "", "", fmt.Errorf("slackactions: read the bot token (connection %q): %w", BotConnection, err)
	}
	if conn.Password == "" {
		return "", "", fmt.Errorf("slackactions: connection %q (secret updraft-connections-%s) has no password: put the bot token (xoxb-…) there",
			BotConnection, BotConnection)
	}
	return signingSecret, conn.Password, nil
}

// FromSecrets returns a Handler whose signing secret and bot token come from Secret
// Manager (cfg's own are replaced). An error wrapping ErrNotConfigured means they are not
// there.
func FromSecrets(ctx context.Context, sm *secrets.Client, cfg Config) (*Handler, error) {
	s, t, err := LoadSecrets(ctx, sm)
	if err != nil {
		return nil, err
	}
	cfg.SigningSecret, cfg.BotToken = s, t
	return New(cfg)
}
