package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// Against a deployment the CLI goes through the UI service's REST API (`updraft --api URL
// ...`, or UPDRAFT_API), so roles and the audit log apply to it; see docs/api.md. It sends a
// Google ID token as a bearer token: UPDRAFT_ID_TOKEN when set, else the output of
// `gcloud auth print-identity-token`.

// splitAPIFlag takes a leading global `--api URL` (or `--api=URL`) off argv; without one the
// API is UPDRAFT_API ("" means none: talk to Firestore directly).
func (a *App) splitAPIFlag(argv []string) ([]string, string) {
	apiURL := a.Getenv("UPDRAFT_API")
	for len(argv) > 0 {
		switch {
		case argv[0] == "--api" || argv[0] == "-api":
			if len(argv) < 2 {
				return argv[1:], ""
			}
			apiURL, argv = argv[1], argv[2:]
		case strings.HasPrefix(argv[0], "--api="):
			apiURL, argv = strings.TrimPrefix(argv[0], "--api="), argv[1:]
		default:
			return argv, strings.TrimRight(apiURL, "/")
		}
	}
	return argv, strings.TrimRight(apiURL, "/")
}

// apiClient calls the REST API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
	// csrf is the CSRF token the API hands out in GET /me, sent on state-changing requests
	// once the API asked for one: behind IAP a request carries IAP's identity, which the API
	// treats as a browser's.
	csrf string
}

// APIError is an error the API answered with.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code) }

func (a *App) newAPIClient(ctx context.Context, base string) (*apiClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api %q is not a URL like https://updraft-ui-xyz.a.run.app", base)
	}
	tok := strings.TrimSpace(a.Getenv("UPDRAFT_ID_TOKEN"))
	if tok == "" {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(cctx, "gcloud", "auth", "print-identity-token").Output()
		if err != nil {
			return nil, fmt.Errorf("no ID token for the API: set UPDRAFT_ID_TOKEN, or sign in with `gcloud auth login` "+
				"so that `gcloud auth print-identity-token` works (%v)", err)
		}
		tok = strings.TrimSpace(string(out))
	}
	return &apiClient{base: base, token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// call sends a request to /api/v1+path and decodes the JSON answer into out (when not nil).
// When the API refuses a state-changing request for want of a CSRF token (the request reached
// it through IAP), it fetches the token from GET /me and sends the request once more.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		raw = b
	}
	err := c.send(ctx, method, path, raw, body != nil, out)
	var ae *APIError
	if c.csrf != "" || method == http.MethodGet || !errors.As(err, &ae) || ae.Status != http.StatusForbidden ||
		!strings.Contains(ae.Message, "X-CSRF-Token") {
		return err
	}
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	if merr := c.send(ctx, http.MethodGet, "/me", nil, false, &me); merr != nil || me.CSRFToken == "" {
		return err
	}
	c.csrf = me.CSRFToken
	return c.send(ctx, method, path, raw, body != nil, out)
}

// send makes one request; withBody says whether raw is a JSON body to send.
func (c *apiClient) send(ctx context.Context, method, path string, raw []byte, withBody bool, out any) error {
	var rd io.Reader
	if withBody {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if withBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" && method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call the API at %s: %w", c.base, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the API's answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
			return &APIError{Status: res.StatusCode, Code: "http", Message: strings.TrimSpace(firstLine(string(b)))}
		}
		return &APIError{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the API's answer is not the JSON expected: %w", err)
	}
	return nil
}

// esc escapes one path segment (task ids like load[3], emails).
func esc(s string) string { return url.PathEscape(s) }

// apiRunRef splits DAG/RUN_ID; over the API a run must be named with its DAG.
func apiRunRef(ref string) (string, string, error) {
	dagID, runID, ok := strings.Cut(ref, "/")
	if !ok || dagID == "" || runID == "" {
		return "", "", usagef("over --api, name a run as DAG/RUN_ID (see `updraft --api URL runs list DAG`)")
	}
	return dagID, runID, nil
}

var errNotOverAPI = errors.New("not available over --api")
