package web

import (
	"context"
	"net/http"

	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
)

// identityEmail is the email of the caller the auth middleware put in ctx ("" when none).
func identityEmail(ctx context.Context) string {
	if id, ok := auth.FromContext(ctx); ok {
		return id.Email
	}
	return ""
}

// Identify is the API's Identify option wired to package auth: the identity the auth
// middleware put in the request's context.
func Identify(r *http.Request) (api.Identity, bool) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		return api.Identity{}, false
	}
	return api.Identity{Email: id.Email, Via: id.Via}, true
}

// csrfToken is the token the API expects in X-CSRF-Token from this caller's browser.
func csrfToken(secret []byte, email string) string {
	if len(secret) == 0 || email == "" {
		return ""
	}
	return api.CSRFToken(secret, email)
}
