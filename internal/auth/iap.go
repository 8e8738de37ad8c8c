package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"google.golang.org/api/option"
)

// IAPHeader is the header IAP adds to every request it lets through: its signed assertion
// of who the user is.
const IAPHeader = "X-Goog-Iap-Jwt-Assertion"

// IAP's audience forms: IAP enabled on a Cloud Run service, and IAP on a load balancer's
// backend service. The number is the project's number, not its id.
var iapAudience = regexp.MustCompile(`^/projects/[0-9]+/(locations/[a-z0-9-]+/services/[a-z0-9-]+|global/backendServices/[0-9]+)$`)

// IAP guards a service behind Identity-Aware Proxy: only a request with IAP's valid signed
// header gets through, as Identity{Via: ViaIAP} with the header's email.
type IAP struct {
	audience string
	v        *verifier
	log      *slog.Logger
}

// NewIAP checks the audience, /projects/NUMBER/locations/REGION/services/NAME for IAP on
// Cloud Run or /projects/NUMBER/global/backendServices/ID, and makes the guard. opts
// configure the HTTP client that fetches IAP's keys.
func NewIAP(ctx context.Context, audience string, log *slog.Logger, opts ...option.ClientOption) (*IAP, error) {
	v, err := newVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newIAP(audience, v, log)
}

func newIAP(audience string, v *verifier, log *slog.Logger) (*IAP, error) {
	audience = strings.TrimSpace(audience)
	if audience == "" {
		return nil, fmt.Errorf("auth: %s is not set: IAP's audience is required", EnvIAPAudience)
	}
	if !iapAudience.MatchString(audience) {
		return nil, fmt.Errorf("auth: %s is %q: want /projects/NUMBER/locations/REGION/services/NAME (IAP on Cloud Run) or /projects/NUMBER/global/backendServices/ID, with the project's number", EnvIAPAudience, audience)
	}
	return &IAP{audience: audience, v: v, log: orDefault(log)}, nil
}

// Middleware lets a request through to next only with IAP's valid header; otherwise 401.
func (g *IAP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assertion := r.Header.Get(IAPHeader)
		if assertion == "" {
			refuse(w, r, g.log, ViaIAP, unauthorized("missing IAP assertion", ""))
			return
		}
		id, ref := g.identify(r.Context(), assertion)
		if ref != nil {
			refuse(w, r, g.log, ViaIAP, ref)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

func (g *IAP) identify(ctx context.Context, assertion string) (Identity, *refusal) {
	p, ref := g.v.verify(ctx, assertion, algES256, []string{g.audience}, iapIssuers)
	if ref != nil {
		return Identity{}, ref
	}
	email, _ := emailOf(p) // IAP's assertion has no email_verified: IAP signed the user in
	if email == "" {
		return Identity{}, unauthorized("IAP assertion has no email", "sub "+quote(p.Subject))
	}
	return Identity{Email: email, Via: ViaIAP}, nil
}

// UIConfig says what the UI service accepts. At least one of the two must be set.
type UIConfig struct {
	// IAPAudience is IAP's audience (UPDRAFT_IAP_AUDIENCE); empty refuses IAP's header.
	IAPAudience string
	// IDTokenAudiences are the audiences a bearer ID token may carry
	// (UPDRAFT_ID_TOKEN_AUDIENCE); empty refuses bearer tokens.
	IDTokenAudiences []string
}

// UIAuth guards the UI service and its REST API. A request with IAP's header is judged by
// it alone (Identity{Via: ViaIAP}); otherwise a Google ID token in "Authorization: Bearer"
// for one of the configured audiences, issued by accounts.google.com, with a verified email
// (Identity{Via: ViaIDToken}); otherwise 401. Any Google account passes here: what it may
// do is for package access to decide.
type UIAuth struct {
	iap       *IAP // nil: IAP not configured
	audiences []string
	v         *verifier
	log       *slog.Logger
}

// NewUIAuth checks cfg and makes the guard. opts configure the HTTP client that fetches
// Google's and IAP's keys.
func NewUIAuth(ctx context.Context, cfg UIConfig, log *slog.Logger, opts ...option.ClientOption) (*UIAuth, error) {
	var auds []string
	for _, a := range cfg.IDTokenAudiences {
		if a = strings.TrimSpace(a); a != "" {
			auds = append(auds, a)
		}
	}
	if strings.TrimSpace(cfg.IAPAudience) == "" && len(auds) == 0 {
		return nil, fmt.Errorf("auth: neither %s nor %s is set: the UI needs IAP's audience, a bearer ID-token audience, or both", EnvIAPAudience, EnvIDTokenAudience)
	}
	v, err := newVerifier(ctx, opts)
	if err != nil {
		return nil, err
	}
	g := &UIAuth{audiences: auds, v: v, log: orDefault(log)}
	if strings.TrimSpace(cfg.IAPAudience) != "" {
		if g.iap, err = newIAP(cfg.IAPAudience, v, log); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Middleware lets a request through to next only when its caller is established as above.
// A request with IAP's header is never judged by anything else, even when the header fails.
func (g *UIAuth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, via, ref := g.identify(r)
		if ref != nil {
			refuse(w, r, g.log, via, ref)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

func (g *UIAuth) identify(r *http.Request) (Identity, string, *refusal) {
	if assertion := r.Header.Get(IAPHeader); assertion != "" {
		if g.iap == nil {
			return Identity{}, ViaIAP, unauthorized("IAP assertion not accepted", EnvIAPAudience+" is not set")
		}
		id, ref := g.iap.identify(r.Context(), assertion)
		return id, ViaIAP, ref
	}
	tok, ok, ref := bearer(r)
	if ref != nil {
		return Identity{}, ViaIDToken, ref
	}
	if !ok {
		return Identity{}, ViaIDToken, unauthorized("missing credentials: sign in through IAP or send a Google ID token as a bearer token", "")
	}
	if len(g.audiences) == 0 {
		return Identity{}, ViaIDToken, unauthorized("bearer ID tokens not accepted", EnvIDTokenAudience+" is not set")
	}
	p, ref := g.v.verify(r.Context(), tok, algRS256, g.audiences, googleIssuers)
	if ref != nil {
		return Identity{}, ViaIDToken, ref
	}
	email, verified := emailOf(p)
	if email == "" {
		return Identity{}, ViaIDToken, unauthorized("token has no email", "sub "+quote(p.Subject)+"; service accounts: gcloud auth print-identity-token --include-email")
	}
	if !verified {
		return Identity{}, ViaIDToken, &refusal{status: http.StatusUnauthorized, reason: "email not verified", email: email}
	}
	return Identity{Email: email, Via: ViaIDToken}, ViaIDToken, nil
}
