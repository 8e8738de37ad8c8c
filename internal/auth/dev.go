package auth

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// DevUserHeader, in dev mode only, makes a request act as the email it holds (so a browser
// test can be a viewer). Every other Guard ignores it.
const DevUserHeader = "X-Updraft-Dev-User"

// DefaultDevEmail is the dev identity's email when UPDRAFT_DEV_USER is not set.
const DefaultDevEmail = "dev@localhost"

// Dev is auth turned off, for local development: every request gets through as
// Identity{Email: the dev email, Via: ViaDev}, or as the email in DevUserHeader. It warns,
// loudly, when it is made and on the first request. InvokersFromEnv and UIFromEnv never
// make one on Cloud Run.
type Dev struct {
	email string
	log   *slog.Logger
	first sync.Once
}

// NewDev makes the dev guard for email (DefaultDevEmail when empty) and logs a WARN that
// auth is off.
func NewDev(email string, log *slog.Logger) *Dev {
	if email = strings.TrimSpace(email); email == "" {
		email = DefaultDevEmail
	}
	d := &Dev{email: email, log: orDefault(log)}
	d.warn("")
	return d
}

// Middleware puts the dev identity in every request's context and calls next.
func (d *Dev) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.first.Do(func() { d.warn(r.URL.Path) })
		email := d.email
		if h := strings.TrimSpace(r.Header.Get(DevUserHeader)); h != "" {
			email = h
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), Identity{Email: email, Via: ViaDev})))
	})
}

func (d *Dev) warn(firstPath string) {
	attrs := []any{slog.String("dev_email", d.email), slog.String("env", EnvAuth+"=off")}
	msg := "auth: AUTH IS OFF: every request is accepted as the dev identity; local development only"
	if firstPath != "" {
		msg = "auth: AUTH IS OFF: first request accepted without credentials; local development only"
		attrs = append(attrs, slog.String(logKeyPath, firstPath))
	}
	d.log.Warn(msg, attrs...)
}
