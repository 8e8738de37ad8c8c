package auth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/api/option"

	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/auth/authtest"
)

const (
	schedulerURL = "https://updraft-scheduler-abc123-uc.a.run.app"
	schedulerSA  = "updraft-scheduler-invoker@acme-prod.iam.gserviceaccount.com"
	pushSA       = "updraft-pubsub-push@acme-prod.iam.gserviceaccount.com"
	strangerSA   = "someone-else@acme-prod.iam.gserviceaccount.com"

	iapAud     = "/projects/123456789012/locations/us-central1/services/updraft-ui"
	backendAud = "/projects/123456789012/global/backendServices/4567890123456789"
	uiURL      = "https://updraft-ui-abc123-uc.a.run.app"
	gcloudAud  = "32555940559.apps.googleusercontent.com"
	kim        = "kim@example.com"
	lee        = "lee@example.com"
)

// result is what one request through a guard came to.
type result struct {
	status  int
	body    string
	header  http.Header
	reached bool // the guarded handler ran
	id      auth.Identity
	hasID   bool
}

// serve sends a request with the headers through g to a handler that records the identity.
func serve(t *testing.T, g auth.Guard, headers map[string]string) result {
	t.Helper()
	var res result
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res.reached = true
		res.id, res.hasID = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodPost, "/tick", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res.status, res.body, res.header = rec.Code, rec.Body.String(), rec.Header()
	return res
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func newLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// check asserts a result: a refusal with the status and reason, or success as want.
// Whatever happened, no token sent in headers appears in the answer or the log.
func check(t *testing.T, res result, logs *bytes.Buffer, headers map[string]string, wantStatus int, wantReason string, want auth.Identity) {
	t.Helper()
	if res.status != wantStatus {
		t.Fatalf("status = %d (%q), want %d", res.status, res.body, wantStatus)
	}
	for _, v := range headers {
		parts := strings.Split(strings.TrimPrefix(v, "Bearer "), ".")
		if len(parts) != 3 {
			continue
		}
		for _, p := range parts[1:] { // payload and signature; the header is too generic
			if len(p) > 8 && (strings.Contains(res.body, p) || strings.Contains(logs.String(), p)) {
				t.Fatalf("token material echoed: body %q, log %q", res.body, logs.String())
			}
		}
	}
	if wantStatus >= 300 {
		if res.reached {
			t.Fatal("refused request reached the handler")
		}
		if !strings.Contains(res.body, wantReason) {
			t.Errorf("body = %q, want it to say %q", res.body, wantReason)
		}
		if !strings.Contains(logs.String(), "request refused") || !strings.Contains(logs.String(), wantReason) {
			t.Errorf("log = %q, want a refusal saying %q", logs.String(), wantReason)
		}
		if wantStatus == http.StatusUnauthorized && res.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		return
	}
	if !res.reached || !res.hasID {
		t.Fatalf("reached = %v, identity in context = %v; want both", res.reached, res.hasID)
	}
	if res.id != want {
		t.Errorf("identity = %+v, want %+v", res.id, want)
	}
}

// stripSignature keeps header and payload and drops the signature, as a proxy that
// verified a token and passed it on might.
func stripSignature(tok string) string { return tok[:strings.LastIndex(tok, ".")+1] }

// swapPayload puts other's payload under tok's header and signature.
func swapPayload(tok, other string) string {
	a, b := strings.Split(tok, "."), strings.Split(other, ".")
	return a[0] + "." + b[1] + "." + a[2]
}

func TestInvokers(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	sa := func(email string) authtest.Claims { return authtest.ServiceAccount(schedulerURL, email) }
	ok := func(email string) auth.Identity { return auth.Identity{Email: email, Via: auth.ViaOIDC} }

	cases := []struct {
		name   string
		header map[string]string
		status int
		reason string
		want   auth.Identity
	}{
		{"valid", bearer(keys.IDToken(sa(schedulerSA))), 204, "", ok(schedulerSA)},
		{"second invoker, bare issuer", bearer(keys.IDToken(sa(pushSA).With("iss", "accounts.google.com"))), 204, "", ok(pushSA)},
		{"allowed list ignores case", bearer(keys.IDToken(sa(strings.ToUpper(pushSA[:1]) + pushSA[1:]))), 204, "", ok("U" + pushSA[1:])},
		{"lower-case bearer scheme", map[string]string{"Authorization": "bearer " + keys.IDToken(sa(schedulerSA))}, 204, "", ok(schedulerSA)},
		{"missing header", nil, 401, "missing bearer token", auth.Identity{}},
		{"not a bearer token", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, 401, "not a bearer token", auth.Identity{}},
		{"garbage", bearer("not-a-jwt"), 401, "malformed token", auth.Identity{}},
		{"expired", bearer(keys.IDToken(sa(schedulerSA).Expired())), 401, "token expired", auth.Identity{}},
		{"no exp", bearer(keys.IDToken(sa(schedulerSA).With("exp", nil))), 401, "token expired", auth.Identity{}},
		{"wrong audience", bearer(keys.IDToken(authtest.ServiceAccount("https://other-service.a.run.app", schedulerSA))), 401, "wrong audience", auth.Identity{}},
		{"empty audience", bearer(keys.IDToken(sa(schedulerSA).With("aud", ""))), 401, "wrong audience", auth.Identity{}},
		{"wrong issuer", bearer(keys.IDToken(sa(schedulerSA).With("iss", "https://accounts.example.com"))), 401, "wrong issuer", auth.Identity{}},
		{"IAP issuer on an ID token", bearer(keys.IDToken(sa(schedulerSA).With("iss", authtest.IAPIssuer))), 401, "wrong issuer", auth.Identity{}},
		{"unsigned", bearer(authtest.Unsigned(sa(schedulerSA))), 401, "token is unsigned", auth.Identity{}},
		{"signature stripped", bearer(stripSignature(keys.IDToken(sa(schedulerSA)))), 401, "token is unsigned", auth.Identity{}},
		{"signature removed by Cloud Run", bearer(stripSignature(keys.IDToken(sa(schedulerSA))) + "SIGNATURE_REMOVED_BY_GOOGLE"), 401, "signature removed by Cloud Run", auth.Identity{}},
		{"signed by an unknown key", bearer(keys.ForgedIDToken(sa(schedulerSA))), 401, "invalid token signature", auth.Identity{}},
		{"unknown key id", bearer(keys.UnknownKIDIDToken(sa(schedulerSA))), 401, "invalid token signature", auth.Identity{}},
		{"payload swapped under a stranger's signature", bearer(swapPayload(keys.IDToken(sa(strangerSA)), keys.IDToken(sa(schedulerSA)))), 401, "invalid token signature", auth.Identity{}},
		{"IAP-signed (ES256) token as bearer", bearer(keys.IAPToken(sa(schedulerSA))), 401, "unexpected signing algorithm", auth.Identity{}},
		{"email not verified", bearer(keys.IDToken(sa(schedulerSA).With("email_verified", false))), 401, "email not verified", auth.Identity{}},
		{"email_verified absent", bearer(keys.IDToken(sa(schedulerSA).With("email_verified", nil))), 401, "email not verified", auth.Identity{}},
		{"no email", bearer(keys.IDToken(sa(schedulerSA).With("email", nil))), 401, "token has no email", auth.Identity{}},
		{"invoker not allowed", bearer(keys.IDToken(sa(strangerSA))), 403, "not an allowed invoker", auth.Identity{}},
		{"dev header means nothing here", map[string]string{auth.DevUserHeader: schedulerSA}, 401, "missing bearer token", auth.Identity{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLog()
			g, err := auth.NewInvokers(context.Background(), auth.InvokersConfig{
				Audience: schedulerURL,
				Allowed:  []string{schedulerSA, " " + pushSA + " "},
			}, log, keys.ClientOption())
			if err != nil {
				t.Fatal(err)
			}
			check(t, serve(t, g, c.header), logs, c.header, c.status, c.reason, c.want)
			if c.status == 403 && !strings.Contains(logs.String(), strangerSA) {
				t.Errorf("403 log %q does not name the caller", logs.String())
			}
		})
	}
}

// failingTransport stands for Google's key-set URLs being out of reach.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network unreachable")
}

func TestInvokersKeySetUnavailable(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	log, logs := newLog()
	g, err := auth.NewInvokers(context.Background(), auth.InvokersConfig{Audience: schedulerURL, Allowed: []string{schedulerSA}},
		log, option.WithHTTPClient(&http.Client{Transport: failingTransport{}}))
	if err != nil {
		t.Fatal(err)
	}
	tok := keys.IDToken(authtest.ServiceAccount(schedulerURL, schedulerSA))
	// Not the caller's fault: 503, so Pub/Sub and Cloud Scheduler retry.
	check(t, serve(t, g, bearer(tok)), logs, bearer(tok), http.StatusServiceUnavailable, "cannot fetch Google's public keys", auth.Identity{})
}

func TestIAP(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	iap := func(tok string) map[string]string { return map[string]string{auth.IAPHeader: tok} }
	ok := auth.Identity{Email: kim, Via: auth.ViaIAP}
	valid := authtest.IAP(iapAud, kim)
	shortSig := func() string { // an ES256 token whose signature is 3 bytes
		tok := keys.IAPToken(valid)
		return stripSignature(tok) + "AAAA"
	}

	cases := []struct {
		name     string
		audience string
		header   map[string]string
		status   int
		reason   string
		want     auth.Identity
	}{
		{"valid", iapAud, iap(keys.IAPToken(valid)), 204, "", ok},
		{"valid, backend-service audience", backendAud, iap(keys.IAPToken(authtest.IAP(backendAud, kim))), 204, "", ok},
		{"header name is case-insensitive", iapAud, map[string]string{"x-goog-iap-jwt-assertion": keys.IAPToken(valid)}, 204, "", ok},
		{"missing header", iapAud, nil, 401, "missing IAP assertion", auth.Identity{}},
		{"bearer token is not IAP", iapAud, bearer(keys.IDToken(authtest.ServiceAccount(iapAud, kim))), 401, "missing IAP assertion", auth.Identity{}},
		{"expired", iapAud, iap(keys.IAPToken(valid.Expired())), 401, "token expired", auth.Identity{}},
		{"wrong audience", iapAud, iap(keys.IAPToken(authtest.IAP(backendAud, kim))), 401, "wrong audience", auth.Identity{}},
		{"another service's audience", iapAud, iap(keys.IAPToken(authtest.IAP("/projects/123456789012/locations/us-central1/services/other", kim))), 401, "wrong audience", auth.Identity{}},
		{"wrong issuer", iapAud, iap(keys.IAPToken(valid.With("iss", authtest.GoogleIssuer))), 401, "wrong issuer", auth.Identity{}},
		{"unsigned", iapAud, iap(authtest.Unsigned(valid)), 401, "token is unsigned", auth.Identity{}},
		{"signed by an unknown key", iapAud, iap(keys.ForgedIAPToken(valid)), 401, "invalid token signature", auth.Identity{}},
		{"RS256 ID token in IAP's header", iapAud, iap(keys.IDToken(valid)), 401, "unexpected signing algorithm", auth.Identity{}},
		{"short ES256 signature", iapAud, iap(shortSig()), 401, "malformed token", auth.Identity{}},
		{"no email", iapAud, iap(keys.IAPToken(valid.With("email", nil))), 401, "no email", auth.Identity{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLog()
			g, err := auth.NewIAP(context.Background(), c.audience, log, keys.ClientOption())
			if err != nil {
				t.Fatal(err)
			}
			check(t, serve(t, g, c.header), logs, c.header, c.status, c.reason, c.want)
		})
	}
}

func TestUIAuth(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	both := auth.UIConfig{IAPAudience: iapAud, IDTokenAudiences: []string{uiURL, gcloudAud}}
	iapKim := keys.IAPToken(authtest.IAP(iapAud, kim))
	user := func(aud, email string) authtest.Claims { return authtest.ServiceAccount(aud, email) }
	bearerLee := "Bearer " + keys.IDToken(user(uiURL, lee))

	cases := []struct {
		name   string
		cfg    auth.UIConfig
		header map[string]string
		status int
		reason string
		want   auth.Identity
	}{
		{"IAP wins over a bearer token", both, map[string]string{auth.IAPHeader: iapKim, "Authorization": bearerLee}, 204, "", auth.Identity{Email: kim, Via: auth.ViaIAP}},
		{"a failed IAP header is not rescued by a bearer token", both,
			map[string]string{auth.IAPHeader: keys.IAPToken(authtest.IAP(iapAud, kim).Expired()), "Authorization": bearerLee}, 401, "token expired", auth.Identity{}},
		{"bearer ID token, any verified email", both, map[string]string{"Authorization": bearerLee}, 204, "", auth.Identity{Email: lee, Via: auth.ViaIDToken}},
		{"bearer ID token for the second audience", both, bearer(keys.IDToken(user(gcloudAud, lee))), 204, "", auth.Identity{Email: lee, Via: auth.ViaIDToken}},
		{"bearer ID token for IAP's audience", both, bearer(keys.IDToken(user(iapAud, lee))), 401, "wrong audience", auth.Identity{}},
		{"bearer ID token, expired", both, bearer(keys.IDToken(user(uiURL, lee).Expired())), 401, "token expired", auth.Identity{}},
		{"bearer ID token, wrong issuer", both, bearer(keys.IDToken(user(uiURL, lee).With("iss", "https://securetoken.google.com/acme"))), 401, "wrong issuer", auth.Identity{}},
		{"bearer ID token, email not verified", both, bearer(keys.IDToken(user(uiURL, lee).With("email_verified", false))), 401, "email not verified", auth.Identity{}},
		{"bearer IAP assertion", both, bearer(iapKim), 401, "unexpected signing algorithm", auth.Identity{}},
		{"bearer unsigned", both, bearer(authtest.Unsigned(user(uiURL, lee))), 401, "token is unsigned", auth.Identity{}},
		{"nothing", both, nil, 401, "missing credentials", auth.Identity{}},
		{"dev header is ignored without credentials", both, map[string]string{auth.DevUserHeader: kim}, 401, "missing credentials", auth.Identity{}},
		{"dev header does not override a token", both, map[string]string{auth.DevUserHeader: kim, "Authorization": bearerLee}, 204, "", auth.Identity{Email: lee, Via: auth.ViaIDToken}},
		{"IAP header without IAP configured", auth.UIConfig{IDTokenAudiences: []string{uiURL}},
			map[string]string{auth.IAPHeader: iapKim, "Authorization": bearerLee}, 401, "IAP assertion not accepted", auth.Identity{}},
		{"bearer without ID-token audiences configured", auth.UIConfig{IAPAudience: iapAud}, map[string]string{"Authorization": bearerLee}, 401, "bearer ID tokens not accepted", auth.Identity{}},
		{"IAP only", auth.UIConfig{IAPAudience: iapAud}, map[string]string{auth.IAPHeader: iapKim}, 204, "", auth.Identity{Email: kim, Via: auth.ViaIAP}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLog()
			g, err := auth.NewUIAuth(context.Background(), c.cfg, log, keys.ClientOption())
			if err != nil {
				t.Fatal(err)
			}
			check(t, serve(t, g, c.header), logs, c.header, c.status, c.reason, c.want)
		})
	}
}

func TestDev(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		email  string
		header string
		want   string
	}{
		{"default email", "", "", auth.DefaultDevEmail},
		{"configured email", kim, "", kim},
		{"header overrides", kim, "viewer@example.com", "viewer@example.com"},
		{"blank header does not", kim, "  ", kim},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLog()
			g := auth.NewDev(c.email, log)
			check(t, serve(t, g, map[string]string{auth.DevUserHeader: c.header}), logs, nil, 204, "", auth.Identity{Email: c.want, Via: auth.ViaDev})
		})
	}
}

func TestDevWarnsOnStartAndFirstRequest(t *testing.T) {
	t.Parallel()
	log, logs := newLog()
	warnings := func() int { return strings.Count(logs.String(), "level=WARN msg=\"auth: AUTH IS OFF") }

	g := auth.NewDev("", log)
	if n := warnings(); n != 1 {
		t.Fatalf("after start: %d warnings, want 1; log %q", n, logs.String())
	}
	serve(t, g, nil)
	if n := warnings(); n != 2 {
		t.Fatalf("after the first request: %d warnings, want 2; log %q", n, logs.String())
	}
	serve(t, g, nil)
	if n := warnings(); n != 2 {
		t.Fatalf("after the second request: %d warnings, want still 2", n)
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	invokersOK := map[string]string{auth.EnvOIDCAudience: schedulerURL, auth.EnvOIDCInvokers: schedulerSA + ", " + pushSA + ","}

	cases := []struct {
		name    string
		ui      bool // UIFromEnv, else InvokersFromEnv
		env     map[string]string
		wantErr []string // substrings of the error; nil: no error
		wantDev bool
	}{
		{"invokers: auth on by default, audience missing", false, map[string]string{auth.EnvOIDCInvokers: schedulerSA}, []string{auth.EnvOIDCAudience}, false},
		{"invokers: invokers missing", false, map[string]string{auth.EnvOIDCAudience: schedulerURL}, []string{auth.EnvOIDCInvokers}, false},
		{"invokers: invokers blank", false, map[string]string{auth.EnvAuth: "on", auth.EnvOIDCAudience: schedulerURL, auth.EnvOIDCInvokers: " , "}, []string{auth.EnvOIDCInvokers}, false},
		{"invokers: not an email", false, map[string]string{auth.EnvOIDCAudience: schedulerURL, auth.EnvOIDCInvokers: schedulerSA + ",scheduler"}, []string{auth.EnvOIDCInvokers, `"scheduler"`}, false},
		{"invokers: configured", false, invokersOK, nil, false},
		{"invokers: off locally", false, map[string]string{auth.EnvAuth: "off"}, nil, true},
		{"invokers: off on Cloud Run", false, map[string]string{auth.EnvAuth: "off", auth.EnvCloudRunService: "updraft-scheduler"}, []string{auth.EnvAuth, auth.EnvCloudRunService}, false},
		{"invokers: OFF on a Cloud Run job", false, map[string]string{auth.EnvAuth: "OFF", auth.EnvCloudRunJob: "updraft-worker"}, []string{auth.EnvAuth, auth.EnvCloudRunJob}, false},
		{"invokers: unknown mode", false, map[string]string{auth.EnvAuth: "disabled"}, []string{auth.EnvAuth, "disabled"}, false},
		{"ui: nothing set", true, nil, []string{auth.EnvIAPAudience, auth.EnvIDTokenAudience}, false},
		{"ui: IAP audience with a project id", true, map[string]string{auth.EnvIAPAudience: "/projects/acme-prod/locations/us-central1/services/updraft-ui"}, []string{auth.EnvIAPAudience, "NUMBER"}, false},
		{"ui: IAP audience", true, map[string]string{auth.EnvIAPAudience: iapAud}, nil, false},
		{"ui: ID-token audience only", true, map[string]string{auth.EnvIDTokenAudience: uiURL}, nil, false},
		{"ui: off locally", true, map[string]string{auth.EnvAuth: " off ", auth.EnvDevUser: kim}, nil, true},
		{"ui: off on Cloud Run", true, map[string]string{auth.EnvAuth: "off", auth.EnvCloudRunService: "updraft-ui", auth.EnvIAPAudience: iapAud}, []string{auth.EnvCloudRunService}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return c.env[k] }
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			from := auth.InvokersFromEnv
			if c.ui {
				from = auth.UIFromEnv
			}
			g, err := from(context.Background(), getenv, log, keys.ClientOption())
			if c.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one naming %v", c.wantErr)
				}
				for _, s := range c.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, isDev := g.(*auth.Dev); isDev != c.wantDev {
				t.Fatalf("guard is %T, want dev = %v", g, c.wantDev)
			}
		})
	}
}

// TestFromEnvEndToEnd checks that what FromEnv read is what the guards enforce.
func TestFromEnvEndToEnd(t *testing.T) {
	t.Parallel()
	keys := authtest.New(t)
	log, logs := newLog()
	env := map[string]string{auth.EnvOIDCAudience: schedulerURL, auth.EnvOIDCInvokers: " " + schedulerSA + " , " + pushSA}
	g, err := auth.InvokersFromEnv(context.Background(), func(k string) string { return env[k] }, log, keys.ClientOption())
	if err != nil {
		t.Fatal(err)
	}
	tok := keys.IDToken(authtest.ServiceAccount(schedulerURL, pushSA))
	check(t, serve(t, g, bearer(tok)), logs, bearer(tok), 204, "", auth.Identity{Email: pushSA, Via: auth.ViaOIDC})
	tok = keys.IDToken(authtest.ServiceAccount(schedulerURL, strangerSA))
	check(t, serve(t, g, bearer(tok)), logs, bearer(tok), 403, "not an allowed invoker", auth.Identity{})

	ui := map[string]string{auth.EnvIAPAudience: iapAud, auth.EnvIDTokenAudience: uiURL + "," + gcloudAud}
	g, err = auth.UIFromEnv(context.Background(), func(k string) string { return ui[k] }, log, keys.ClientOption())
	if err != nil {
		t.Fatal(err)
	}
	tok = keys.IDToken(authtest.ServiceAccount(gcloudAud, lee))
	check(t, serve(t, g, bearer(tok)), logs, bearer(tok), 204, "", auth.Identity{Email: lee, Via: auth.ViaIDToken})
	tok = keys.IAPToken(authtest.IAP(iapAud, kim))
	check(t, serve(t, g, map[string]string{auth.IAPHeader: tok}), logs, map[string]string{auth.IAPHeader: tok}, 204, "", auth.Identity{Email: kim, Via: auth.ViaIAP})

	dev := map[string]string{auth.EnvAuth: "off", auth.EnvDevUser: kim}
	g, err = auth.UIFromEnv(context.Background(), func(k string) string { return dev[k] }, log)
	if err != nil {
		t.Fatal(err)
	}
	check(t, serve(t, g, nil), logs, nil, 204, "", auth.Identity{Email: kim, Via: auth.ViaDev})
	check(t, serve(t, g, map[string]string{auth.DevUserHeader: lee}), logs, nil, 204, "", auth.Identity{Email: lee, Via: auth.ViaDev})
}

func TestContext(t *testing.T) {
	t.Parallel()
	if _, ok := auth.FromContext(context.Background()); ok {
		t.Fatal("identity in an empty context")
	}
	want := auth.Identity{Email: kim, Via: auth.ViaIAP}
	got, ok := auth.FromContext(auth.WithIdentity(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("FromContext = %+v, %v; want %+v, true", got, ok, want)
	}
}
