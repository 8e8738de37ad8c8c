// Package authtest serves Google's two public key sets from a loopback server and mints
// tokens signed by them, so tests of package auth, and of any package that puts auth in
// front of its handlers, verify real tokens without the network.
//
// A Server holds an RSA key (the key set idtoken fetches from
// https://www.googleapis.com/oauth2/v3/certs, for Google ID tokens, RS256) and an EC P-256
// key (https://www.gstatic.com/iap/verify/public_key-jwk, for IAP's assertions, ES256).
// Client returns an *http.Client whose transport sends requests for those two URLs to the
// loopback server and refuses every other host; pass ClientOption to the auth constructors.
//
// Only tests import it. It imports nothing from Updraft.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"google.golang.org/api/option"
)

// The URLs idtoken fetches key sets from (google.golang.org/api/idtoken, validate.go).
const (
	// GoogleCertsURL serves the RSA keys that sign Google ID tokens.
	GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"
	// IAPCertsURL serves the EC keys that sign IAP's x-goog-iap-jwt-assertion.
	IAPCertsURL = "https://www.gstatic.com/iap/verify/public_key-jwk"
)

// The issuers Google writes into its tokens.
const (
	// GoogleIssuer is the iss of a Google ID token (Google also uses "accounts.google.com").
	GoogleIssuer = "https://accounts.google.com"
	// IAPIssuer is the iss of an IAP assertion.
	IAPIssuer = "https://cloud.google.com/iap"
)

// Server serves the key sets and signs tokens. Make one with New.
type Server struct {
	srv *httptest.Server

	rsaKey *rsa.PrivateKey
	rsaKID string
	ecKey  *ecdsa.PrivateKey
	ecKID  string

	// Keys nobody published, for forged tokens.
	strangerRSA *rsa.PrivateKey
	strangerEC  *ecdsa.PrivateKey
}

// New generates the keys, starts the loopback server and closes it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{rsaKID: "updraft-test-rsa-1", ecKID: "updraft-test-ec-1"}
	var err error
	if s.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatalf("authtest: rsa key: %v", err)
	}
	if s.strangerRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatalf("authtest: rsa key: %v", err)
	}
	if s.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("authtest: ec key: %v", err)
	}
	if s.strangerEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatalf("authtest: ec key: %v", err)
	}

	rsaSet, err := json.Marshal(keySet{Keys: []jwk{rsaJWK(s.rsaKID, &s.rsaKey.PublicKey)}})
	if err != nil {
		t.Fatalf("authtest: rsa key set: %v", err)
	}
	ecJWK, err := ecJWK(s.ecKID, &s.ecKey.PublicKey)
	if err != nil {
		t.Fatalf("authtest: ec key set: %v", err)
	}
	ecSet, err := json.Marshal(keySet{Keys: []jwk{ecJWK}})
	if err != nil {
		t.Fatalf("authtest: ec key set: %v", err)
	}

	mux := http.NewServeMux()
	serve := func(body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=3600")
			w.Write(body)
		}
	}
	mux.HandleFunc("GET "+mustURL(GoogleCertsURL).Path, serve(rsaSet))
	mux.HandleFunc("GET "+mustURL(IAPCertsURL).Path, serve(ecSet))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// Client returns an HTTP client that fetches Google's two key-set URLs from the loopback
// server. A request for any other host fails, so a test never reaches the network.
func (s *Server) Client() *http.Client {
	local := mustURL(s.srv.URL)
	return &http.Client{Transport: redirect{
		hosts: map[string]bool{mustURL(GoogleCertsURL).Host: true, mustURL(IAPCertsURL).Host: true},
		to:    local,
		next:  s.srv.Client().Transport,
	}}
}

// ClientOption is option.WithHTTPClient(s.Client()), for the auth constructors.
func (s *Server) ClientOption() option.ClientOption {
	return option.WithHTTPClient(s.Client())
}

// IDToken is a Google ID token (RS256) with the claims, signed by the published RSA key.
func (s *Server) IDToken(c Claims) string {
	return signRS256(s.rsaKey, s.rsaKID, c)
}

// IAPToken is an IAP assertion (ES256) with the claims, signed by the published EC key.
func (s *Server) IAPToken(c Claims) string {
	return signES256(s.ecKey, s.ecKID, c)
}

// ForgedIDToken is signed RS256 by a key that is not in the key set, under the kid of the
// one that is: only the signature is wrong.
func (s *Server) ForgedIDToken(c Claims) string {
	return signRS256(s.strangerRSA, s.rsaKID, c)
}

// ForgedIAPToken is signed ES256 by a key that is not in the IAP key set, under the kid of
// the one that is.
func (s *Server) ForgedIAPToken(c Claims) string {
	return signES256(s.strangerEC, s.ecKID, c)
}

// UnknownKIDIDToken is signed RS256 by an unpublished key under a kid nobody published.
func (s *Server) UnknownKIDIDToken(c Claims) string {
	return signRS256(s.strangerRSA, "nobody-published-this", c)
}

// Unsigned is a token with "alg": "none" and an empty signature.
func Unsigned(c Claims) string {
	return segment(map[string]string{"alg": "none", "typ": "JWT"}) + "." + segment(c) + "."
}

// Claims are a token's payload.
type Claims map[string]any

// ServiceAccount is what Cloud Scheduler and Pub/Sub push send: a Google ID token for the
// audience, from the service account email, issued a minute ago, expiring in an hour.
func ServiceAccount(audience, email string) Claims {
	now := time.Now()
	return Claims{
		"iss":            GoogleIssuer,
		"aud":            audience,
		"azp":            "111111111111111111111",
		"sub":            "111111111111111111111",
		"email":          email,
		"email_verified": true,
		"iat":            now.Add(-time.Minute).Unix(),
		"exp":            now.Add(time.Hour).Unix(),
	}
}

// IAP is the payload of an IAP assertion for the audience and the signed-in user's email,
// issued a minute ago, expiring in ten minutes (IAP's own lifetime).
func IAP(audience, email string) Claims {
	now := time.Now()
	return Claims{
		"iss":   IAPIssuer,
		"aud":   audience,
		"sub":   "accounts.google.com:222222222222222222222",
		"email": email,
		"iat":   now.Add(-time.Minute).Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
	}
}

// With returns a copy of the claims with key set to v; a nil v removes the key.
func (c Claims) With(key string, v any) Claims {
	out := make(Claims, len(c)+1)
	for k, val := range c {
		out[k] = val
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

// Expired returns a copy issued two hours ago that expired an hour ago.
func (c Claims) Expired() Claims {
	now := time.Now()
	return c.With("iat", now.Add(-2*time.Hour).Unix()).With("exp", now.Add(-time.Hour).Unix())
}

type keySet struct {
	Keys []jwk `json:"keys"`
}

// jwk has the fields Google's key sets carry.
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use,omitempty"`
	Kid string `json:"kid"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

func rsaJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{
		Kty: "RSA", Alg: "RS256", Use: "sig", Kid: kid,
		N: b64(pub.N.Bytes()),
		E: b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) (jwk, error) {
	p, err := pub.Bytes() // 0x04 || X || Y, 32 bytes each on P-256
	if err != nil {
		return jwk{}, err
	}
	if len(p) != 65 {
		return jwk{}, fmt.Errorf("unexpected P-256 point length %d", len(p))
	}
	return jwk{Kty: "EC", Alg: "ES256", Use: "sig", Kid: kid, Crv: "P-256", X: b64(p[1:33]), Y: b64(p[33:])}, nil
}

func signRS256(key *rsa.PrivateKey, kid string, c Claims) string {
	signed := segment(map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"}) + "." + segment(c)
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		panic(fmt.Sprintf("authtest: sign RS256: %v", err))
	}
	return signed + "." + b64(sig)
}

func signES256(key *ecdsa.PrivateKey, kid string, c Claims) string {
	signed := segment(map[string]string{"alg": "ES256", "kid": kid, "typ": "JWT"}) + "." + segment(c)
	h := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		panic(fmt.Sprintf("authtest: sign ES256: %v", err))
	}
	sig := make([]byte, 64) // JWS: r || s, each 32 bytes big-endian
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}

func segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("authtest: encode token segment: %v", err))
	}
	return b64(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// redirect sends requests for Google's key-set hosts to the loopback server.
type redirect struct {
	hosts map[string]bool
	to    *url.URL
	next  http.RoundTripper
}

func (rt redirect) RoundTrip(r *http.Request) (*http.Response, error) {
	if !rt.hosts[r.URL.Host] {
		return nil, fmt.Errorf("authtest: refusing to reach %s from a test", r.URL.Host)
	}
	r = r.Clone(r.Context())
	r.URL.Scheme = rt.to.Scheme
	r.URL.Host = rt.to.Host
	r.Host = rt.to.Host
	return rt.next.RoundTrip(r)
}
