package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// Issuers.
var (
	googleIssuers = []string{"accounts.google.com", "https://accounts.google.com"}
	iapIssuers    = []string{"https://cloud.google.com/iap"}
)

// Signing algorithms: Google ID tokens are RS256, IAP's assertions ES256. idtoken picks the
// key set by the token's own alg, so each path pins the one it expects.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
)

// cloudRunStripped is what Cloud Run puts in place of a token's signature when its own IAM
// invoker check has consumed the token ("Cloud Run removes the token signature before
// passing the token to the user container"). Such a token cannot be verified here.
const cloudRunStripped = "SIGNATURE_REMOVED_BY_GOOGLE"

// maxTokenLen bounds what is parsed at all; Google's tokens are about 1 KB.
const maxTokenLen = 16 << 10

// Log attribute keys.
const (
	logKeyReason = "reason"
	logKeyDetail = "detail"
	logKeyStatus = "status"
	logKeyMethod = "method"
	logKeyPath   = "path"
	logKeyVia    = "via"
	logKeyEmail  = "email"
)

// refusal is why a request is refused. reason is short and safe to tell the caller;
// detail is for the log only. Neither ever holds token material.
type refusal struct {
	status int
	reason string
	detail string
	email  string
}

func unauthorized(reason, detail string) *refusal {
	return &refusal{status: http.StatusUnauthorized, reason: reason, detail: detail}
}

// verifier checks Google-signed tokens with idtoken, which fetches and caches the key sets.
type verifier struct {
	v *idtoken.Validator
}

func newVerifier(ctx context.Context, opts []option.ClientOption) (*verifier, error) {
	v, err := idtoken.NewValidator(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("auth: token validator: %w", err)
	}
	return &verifier{v: v}, nil
}

// verify checks token's form, algorithm, signature, audience (one of audiences, never
// empty), expiry and issuer, and returns its claims.
func (v *verifier) verify(ctx context.Context, token, alg string, audiences, issuers []string) (*idtoken.Payload, *refusal) {
	if len(token) > maxTokenLen {
		return nil, unauthorized("malformed token", "token too long")
	}
	if strings.HasSuffix(token, "."+cloudRunStripped) {
		return nil, unauthorized("token signature removed by Cloud Run",
			"Cloud Run's IAM invoker check consumed the token and stripped its signature; see docs/auth.md")
	}
	header, sig, err := splitToken(token)
	if err != nil {
		return nil, unauthorized("malformed token", err.Error())
	}
	if len(sig) == 0 || strings.EqualFold(header.Alg, "none") {
		return nil, unauthorized("token is unsigned", "alg "+quote(header.Alg)+" with an empty signature")
	}
	if header.Alg != alg {
		return nil, unauthorized("unexpected signing algorithm", "alg "+quote(header.Alg)+", want "+alg)
	}
	if alg == algES256 && len(sig) != 64 {
		// idtoken slices the signature in halves of 32 bytes without checking its length.
		return nil, unauthorized("malformed token", fmt.Sprintf("ES256 signature of %d bytes, want 64", len(sig)))
	}

	// Unverified claims, only to refuse early with a precise reason; Validate decides.
	claims, err := idtoken.ParsePayload(token)
	if err != nil {
		return nil, unauthorized("malformed token", err.Error())
	}
	if !slices.Contains(audiences, claims.Audience) {
		return nil, unauthorized("wrong audience", "aud "+quote(claims.Audience))
	}
	if time.Now().Unix() > claims.Expires {
		return nil, unauthorized("token expired", "expired at "+time.Unix(claims.Expires, 0).UTC().Format(time.RFC3339))
	}

	// claims.Audience is one of ours, so never empty: an empty audience would skip the check.
	p, err := v.v.Validate(ctx, token, claims.Audience)
	if err != nil {
		if keySetUnavailable(err) {
			return nil, &refusal{status: http.StatusServiceUnavailable, reason: "cannot fetch Google's public keys", detail: err.Error()}
		}
		return nil, unauthorized("invalid token signature", err.Error())
	}
	if !slices.Contains(issuers, p.Issuer) {
		return nil, unauthorized("wrong issuer", "iss "+quote(p.Issuer))
	}
	return p, nil
}

// keySetUnavailable tells a failure to fetch a key set (a server-side problem the caller
// should retry) from a bad token. idtoken's errors are untyped: a transport failure is a
// *url.Error, a bad status says so in words.
func keySetUnavailable(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || strings.Contains(err.Error(), "unable to retrieve cert")
}

type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// splitToken decodes a compact JWS's header and signature.
func splitToken(token string) (tokenHeader, []byte, error) {
	var h tokenHeader
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return h, nil, fmt.Errorf("%d segments, want 3", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return h, nil, fmt.Errorf("signature: %w", err)
	}
	return h, sig, nil
}

// emailOf returns the token's email claim, and whether Google says it is verified
// (email_verified is a JSON boolean; some older tokens carry the string "true").
func emailOf(p *idtoken.Payload) (email string, verified bool) {
	email, _ = p.Claims["email"].(string)
	switch v := p.Claims["email_verified"].(type) {
	case bool:
		verified = v
	case string:
		verified = v == "true"
	}
	return strings.TrimSpace(email), verified
}

// bearer returns the token of an "Authorization: Bearer" header; ok is false when the
// header is absent. A header of another scheme is a refusal.
func bearer(r *http.Request) (token string, ok bool, ref *refusal) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, unauthorized("authorization is not a bearer token", "scheme "+quote(scheme))
	}
	return strings.TrimSpace(tok), true, nil
}

// refuse logs the refusal and answers with its status and short reason.
func refuse(w http.ResponseWriter, r *http.Request, log *slog.Logger, via string, ref *refusal) {
	attrs := []slog.Attr{
		slog.String(logKeyReason, ref.reason),
		slog.Int(logKeyStatus, ref.status),
		slog.String(logKeyMethod, r.Method),
		slog.String(logKeyPath, r.URL.Path),
		slog.String(logKeyVia, via),
	}
	if ref.email != "" {
		attrs = append(attrs, slog.String(logKeyEmail, ref.email))
	}
	if ref.detail != "" {
		attrs = append(attrs, slog.String(logKeyDetail, ref.detail))
	}
	log.LogAttrs(r.Context(), slog.LevelWarn, "auth: request refused", attrs...)
	if ref.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="updraft"`)
	}
	http.Error(w, http.StatusText(ref.status)+": "+ref.reason, ref.status)
}

// quote quotes a claim for the log, cut short: claims come from the caller.
func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func orDefault(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.Default()
	}
	return log
}
