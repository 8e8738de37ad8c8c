package auth

import (
	"context"
	"net/http"
)

// How a caller proved who they are: the values of Identity.Via.
const (
	// ViaOIDC is an invoker's Google OIDC token (Cloud Scheduler, Pub/Sub push).
	ViaOIDC = "oidc"
	// ViaIAP is IAP's signed header.
	ViaIAP = "iap"
	// ViaIDToken is a Google ID token sent to the UI's API as a bearer token.
	ViaIDToken = "idtoken"
	// ViaDev is the dev identity, with auth off.
	ViaDev = "dev"
)

// Identity is who made a request, as a Guard established it.
type Identity struct {
	// Email is the caller's email, as the token or IAP gave it.
	Email string
	// Via is how it was established: ViaOIDC, ViaIAP, ViaIDToken or ViaDev.
	Via string
}

// Guard is an HTTP middleware that lets through only requests whose caller it could
// establish, with the Identity in the request's context. Invokers, IAP, UIAuth and Dev
// are Guards.
type Guard interface {
	Middleware(next http.Handler) http.Handler
}

var (
	_ Guard = (*Invokers)(nil)
	_ Guard = (*IAP)(nil)
	_ Guard = (*UIAuth)(nil)
	_ Guard = (*Dev)(nil)
)

type identityKey struct{}

// WithIdentity returns a copy of ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the Identity a Guard put in ctx, and whether there was one.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
