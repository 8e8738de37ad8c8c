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
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/fsstore"
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

// apiClient is the operations over the REST API (console.Operations): the API authorises
// and audits each call as the person its bearer token names.
type apiClient struct {
	base string
	// token is the bearer token; "" until the first call fetches it (tokenFn).
	token   string
	tokenFn func(ctx context.Context) (string, error)
	http    *http.Client
	// csrf is the CSRF token the API hands out in GET /me, sent on state-changing requests
	// once the API asked for one: behind IAP a request carries IAP's identity, which the API
	// treats as a browser's.
	csrf string
}

var _ console.Operations = (*apiClient)(nil)

// newAPIClient checks the API's URL; the ID token is fetched at the first call, so a
// mistake in the command line is reported without one.
func (a *App) newAPIClient(base string) (*apiClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api %q is not a URL like https://updraft-ui-xyz.a.run.app", base)
	}
	return &apiClient{base: base, tokenFn: a.idToken, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// idToken is the bearer token for the API: UPDRAFT_ID_TOKEN, else gcloud's identity token.
func (a *App) idToken(ctx context.Context) (string, error) {
	if tok := strings.TrimSpace(a.Getenv("UPDRAFT_ID_TOKEN")); tok != "" {
		return tok, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "gcloud", "auth", "print-identity-token").Output()
	if err != nil {
		return "", fmt.Errorf("no ID token for the API: set UPDRAFT_ID_TOKEN, or sign in with `gcloud auth login` "+
			"so that `gcloud auth print-identity-token` works (%v)", err)
	}
	return strings.TrimSpace(string(out)), nil
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
	if c.token == "" {
		tok, err := c.tokenFn(ctx)
		if err != nil {
			return err
		}
		c.token = tok
	}
	err := c.send(ctx, method, path, raw, body != nil, out)
	var ae *console.Error
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
			msg := strings.TrimSpace(firstLine(string(b)))
			if msg == "" {
				msg = res.Status
			}
			return &console.Error{Status: res.StatusCode, Code: "http", Message: fmt.Sprintf("the API at %s answered HTTP %d: %s", c.base, res.StatusCode, msg)}
		}
		return &console.Error{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
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

// dry is the dry_run query of an action's URL.
func dry(b bool) string {
	if b {
		return "?dry_run=true"
	}
	return ""
}

func runPath(dagID, runID string) string { return "/dags/" + esc(dagID) + "/runs/" + esc(runID) }

func taskPath(dagID, runID, taskID string) string {
	return runPath(dagID, runID) + "/tasks/" + esc(taskID)
}

// ListDAGs implements console.Operations.
func (c *apiClient) ListDAGs(ctx context.Context, q console.DAGQuery) (console.DAGPage, error) {
	v := url.Values{"search": {q.Search}, "page_token": {q.PageToken}}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p console.DAGPage
	return p, c.call(ctx, "GET", "/dags?"+v.Encode(), nil, &p)
}

// DAG implements console.Operations.
func (c *apiClient) DAG(ctx context.Context, dagID string) (*console.DAGDetail, error) {
	var d console.DAGDetail
	if err := c.call(ctx, "GET", "/dags/"+esc(dagID), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Deploy implements console.Operations.
func (c *apiClient) Deploy(ctx context.Context, req console.DeployRequest) (*console.DeployReport, error) {
	body := struct {
		Files  []console.DAGFile     `json:"files"`
		Prune  bool                  `json:"prune"`
		Bundle *console.BundleUpload `json:"bundle,omitempty"`
	}{Files: req.Files, Prune: req.Prune, Bundle: req.Bundle}
	var rep console.DeployReport
	err := c.call(ctx, "POST", "/dags"+dry(req.DryRun), body, &rep)
	var ce *console.Error
	if errors.As(err, &ce) && ce.Status == http.StatusRequestEntityTooLarge {
		return nil, &console.Error{Code: ce.Code, Status: ce.Status, Message: ce.Message + ": deploy the folder in parts (without --prune)"}
	}
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// SetPaused implements console.Operations.
func (c *apiClient) SetPaused(ctx context.Context, dagID string, paused, dryRun bool) (*console.Affected, error) {
	var af console.Affected
	if err := c.call(ctx, "PATCH", "/dags/"+esc(dagID)+dry(dryRun), map[string]bool{"paused": paused}, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

// Trigger implements console.Operations.
func (c *apiClient) Trigger(ctx context.Context, req console.TriggerRequest) (*console.TriggerResult, error) {
	body := map[string]any{}
	if len(req.Conf) > 0 {
		body["conf"] = req.Conf
	}
	if req.LogicalDate != nil {
		body["logical_date"] = *req.LogicalDate
	}
	if req.Replace {
		body["replace"] = true
	}
	var res console.TriggerResult
	if err := c.call(ctx, "POST", "/dags/"+esc(req.DagID)+"/runs"+dry(req.DryRun), body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Runs implements console.Operations.
func (c *apiClient) Runs(ctx context.Context, dagID string, q console.PageQuery) (console.RunPage, error) {
	v := url.Values{"page_token": {q.PageToken}}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p console.RunPage
	return p, c.call(ctx, "GET", "/dags/"+esc(dagID)+"/runs?"+v.Encode(), nil, &p)
}

// FindRuns implements console.Operations.
func (c *apiClient) FindRuns(ctx context.Context, runID string) ([]console.RunRef, error) {
	var res struct {
		Runs []console.RunRef `json:"runs"`
	}
	return res.Runs, c.call(ctx, "GET", "/runs?"+url.Values{"run_id": {runID}}.Encode(), nil, &res)
}

// Run implements console.Operations.
func (c *apiClient) Run(ctx context.Context, dagID, runID string) (*console.RunDetail, error) {
	var r console.RunDetail
	if err := c.call(ctx, "GET", runPath(dagID, runID), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ClearRun implements console.Operations.
func (c *apiClient) ClearRun(ctx context.Context, dagID, runID string, dryRun bool) (*console.Affected, error) {
	var af console.Affected
	if err := c.call(ctx, "POST", runPath(dagID, runID)+"/clear"+dry(dryRun), nil, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

// Clear implements console.Operations.
func (c *apiClient) Clear(ctx context.Context, req console.ClearRequest) (*console.Affected, error) {
	if len(req.TaskIDs) == 0 {
		return nil, console.Errorf(console.CodeBadRequest, "name at least one task to clear")
	}
	body := map[string]any{"downstream": req.Downstream, "upstream": req.Upstream, "also": req.TaskIDs[1:]}
	var af console.Affected
	if err := c.call(ctx, "POST", taskPath(req.DagID, req.RunID, req.TaskIDs[0])+"/clear"+dry(req.DryRun), body, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

// Mark implements console.Operations.
func (c *apiClient) Mark(ctx context.Context, req console.MarkRequest) (*console.Affected, error) {
	var af console.Affected
	if err := c.call(ctx, "POST", taskPath(req.DagID, req.RunID, req.TaskID)+"/mark"+dry(req.DryRun), map[string]string{"state": req.State}, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

// Backfill implements console.Operations.
func (c *apiClient) Backfill(ctx context.Context, req console.BackfillRequest) (*console.BackfillResult, error) {
	body := map[string]any{"from": req.From, "to": req.To, "reprocess": req.Reprocess, "max_active_runs": req.MaxActiveRuns}
	var res console.BackfillResult
	if err := c.call(ctx, "POST", "/dags/"+esc(req.DagID)+"/backfills"+dry(req.DryRun), body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Backfills implements console.Operations.
func (c *apiClient) Backfills(ctx context.Context, dagID string) ([]console.BackfillView, error) {
	var res struct {
		Backfills []console.BackfillView `json:"backfills"`
	}
	return res.Backfills, c.call(ctx, "GET", "/dags/"+esc(dagID)+"/backfills", nil, &res)
}

// CancelBackfill implements console.Operations.
func (c *apiClient) CancelBackfill(ctx context.Context, id string, dryRun bool) (*console.Affected, error) {
	var af console.Affected
	if err := c.call(ctx, "DELETE", "/backfills/"+esc(id)+dry(dryRun), nil, &af); err != nil {
		return nil, err
	}
	return &af, nil
}

// Attempts implements console.Operations.
func (c *apiClient) Attempts(ctx context.Context, dagID, runID, taskID string) ([]console.AttemptView, error) {
	var res struct {
		Attempts []console.AttemptView `json:"attempts"`
	}
	return res.Attempts, c.call(ctx, "GET", taskPath(dagID, runID, taskID)+"/attempts", nil, &res)
}

// Attempt implements console.Operations.
func (c *apiClient) Attempt(ctx context.Context, dagID, runID, taskID string, try int) (*console.AttemptDetail, error) {
	var d console.AttemptDetail
	if err := c.call(ctx, "GET", fmt.Sprintf("%s/attempts/%d", taskPath(dagID, runID, taskID), try), nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Log implements console.Operations.
func (c *apiClient) Log(ctx context.Context, dagID, runID, taskID string, try int, after int64) (console.LogChunk, error) {
	var l console.LogChunk
	return l, c.call(ctx, "GET", fmt.Sprintf("%s/attempts/%d/log?after=%d", taskPath(dagID, runID, taskID), try, after), nil, &l)
}

// Variables implements console.Operations.
func (c *apiClient) Variables(ctx context.Context) ([]fsstore.Variable, error) {
	var res struct {
		Variables []fsstore.Variable `json:"variables"`
	}
	return res.Variables, c.call(ctx, "GET", "/variables", nil, &res)
}

// SetVariable implements console.Operations.
func (c *apiClient) SetVariable(ctx context.Context, name, value string) error {
	return c.call(ctx, "PUT", "/variables/"+esc(name), map[string]string{"value": value}, nil)
}

// DeleteVariable implements console.Operations.
func (c *apiClient) DeleteVariable(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", "/variables/"+esc(name), nil, nil)
}

// Users implements console.Operations.
func (c *apiClient) Users(ctx context.Context) ([]console.UserView, error) {
	var res struct {
		Users []console.UserView `json:"users"`
	}
	return res.Users, c.call(ctx, "GET", "/users", nil, &res)
}

// Grant implements console.Operations.
func (c *apiClient) Grant(ctx context.Context, email, role string) (*console.UserView, error) {
	var u console.UserView
	if err := c.call(ctx, "PUT", "/users/"+esc(email), map[string]string{"role": role}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Revoke implements console.Operations.
func (c *apiClient) Revoke(ctx context.Context, email string) error {
	return c.call(ctx, "DELETE", "/users/"+esc(email), nil, nil)
}

// Audit implements console.Operations.
func (c *apiClient) Audit(ctx context.Context, q console.AuditQuery) (console.AuditPage, error) {
	v := url.Values{"dag_id": {q.DagID}, "page_token": {q.PageToken}}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p console.AuditPage
	return p, c.call(ctx, "GET", "/audit?"+v.Encode(), nil, &p)
}
