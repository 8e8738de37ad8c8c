package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"

	"google.golang.org/api/option"
)

// InvokersConfig says whose OIDC tokens an internal service accepts.
type InvokersConfig struct {
	// Audience is the aud the invokers' tokens must carry: the service's URL, as set on
	// the Cloud Scheduler job and the push subscriptions (UPDRAFT_OIDC_AUDIENCE).
	Audience string
	// Allowed are the service-account emails that may call (UPDRAFT_OIDC_INVOKERS).
	Allowed []string
}

// Invokers guards the internal services' endpoints (/tick, Pub/Sub push): only a valid
// Google OIDC token from an allowed service account gets through, as Identity{Via: ViaOIDC}.
type Invokers struct {
	audience string
	allowed  map[string]bool
	v        *verifier
	log      *slog.Logger
}

// NewInvokers checks cfg and makes the guard. opts configure the HTTP client that fetches
// Google's keys (tests pass authtest's); none is needed in production.
func NewInvokers(ctx context.Context, cfg InvokersConfig, log *slog.Logger, opts ...option.ClientOption) (*Invokers, error) {
	aud := strings.TrimSpace(cfg.Audience)
	if aud == "" {
		return nil, fmt.Errorf("auth: %s is not set: the audience of the invokers' OIDC tokens (this service's URL) is required", EnvOIDCAudience)
	}
	allowed, err := emailSet(cfg.Allowed)
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", EnvOIDCInvokers, err)
	}
	if len(allowed) == 0 {
		return nil, fmt.Errorf("auth: %s is not set: name the service accounts that may call (comma-separated emails)", EnvOIDCInvokers)
	}
	v, err := newVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Invokers{audience: aud, allowed: allowed, v: v, log: orDefault(log)}, nil
}

// Middleware lets a request through to next only with a valid token from an allowed
// invoker: 401 for a missing or invalid token, 403 for someone else's valid token.
func (g *Invokers) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ref := g.identify(r)
		if ref != nil {
			refuse(w, r, g.log, ViaOIDC, ref)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

func (g *Invokers) identify(r *http.Request) (Identity, *refusal) {
	tok, ok, ref := bearer(r)
	if ref != nil {
		return Identity{}, ref
	}
	if !ok {
		return Identity{}, unauthorized("missing bearer token", "")
	}
	p, ref := g.v.verify(r.Context(), tok, algRS256, []string{g.audience}, googleIssuers)
	if ref != nil {
		return Identity{}, ref
	}
	email, verified := emailOf(p)
	if email == "" {
		return Identity{}, unauthorized("token has no email", "sub "+quote(p.Subject))
	}
	if !verified {
		return Identity{}, &refusal{status: http.StatusUnauthorized, reason: "email not verified", email: email}
	}
	if !g.allowed[strings.ToLower(email)] {
		return Identity{}, &refusal{status: http.StatusForbidden, reason: "caller is not an allowed invoker", email: email}
	}
	return Identity{Email: email, Via: ViaOIDC}, nil
}

// emailSet lower-cases and checks a list of emails.
func emailSet(emails []string) (map[string]bool, error) {
	set := make(map[string]bool, len(emails))
	var errs []error
	for _, e := range emails {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			errs = append(errs, fmt.Errorf("%q is not an email address", e))
			continue
		}
		set[strings.ToLower(e)] = true
	}
	return set, errors.Join(errs...)
}
