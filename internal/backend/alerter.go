package backend

import (
	"context"
	"log/slog"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/taskrun"
)

// NewAlerter builds the alerter of a deployment's components (the local stack, the
// scheduler service, the Alerts function): DAG specs and variables from the engine, bot tokens and variable
// overrides from Secret Manager through newResolver (nil: none, and alerts fail, logged).
func NewAlerter(st *fsstore.Store, eng *engine.Engine, newResolver func() taskrun.SecretResolver, cfg alerts.Config, log *slog.Logger) *alerts.Alerter {
	return alerts.New(st, alertSpecs{eng, newResolver}, slackTokens(newResolver), cfg, log)
}

// alertSpecs gives the alerter DAG specs and variables as templates see them: an
// updraft-variables-NAME secret overrides the variable in Firestore.
type alertSpecs struct {
	*engine.Engine
	newResolver func() taskrun.SecretResolver
}

// Variable returns a variable's override secret, else its value in Firestore.
func (a alertSpecs) Variable(ctx context.Context, name string) (string, bool, error) {
	if a.newResolver != nil {
		if v, ok, err := a.newResolver().Variable(ctx, name); err != nil || ok {
			return v, ok, err
		}
	}
	return a.Engine.Variable(ctx, name)
}

// slackTokens reads a Slack connection's bot token (its password) through Secret Manager;
// nil when there is none here (alerts then fail, logged).
func slackTokens(newResolver func() taskrun.SecretResolver) alerts.Tokens {
	if newResolver == nil {
		return nil
	}
	return func(ctx context.Context, conn string) (string, error) {
		c, err := newResolver().Conn(ctx, conn)
		if err != nil {
			return "", err
		}
		return c.Password, nil
	}
}
