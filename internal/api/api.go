package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console"
)

// Identity is who a request comes from, and how they proved it: Via is "iap" or "dev" for a
// browser (cookie or IAP header: CSRF-checked), "idtoken" for a bearer ID token (the CLI).
type Identity struct {
	Email string
	Via   string
}

// Options configure the handler.
type Options struct {
	// Identify returns the request's identity; false means none (401). Nil reads the
	// identity a package auth Guard put in the request's context (auth.FromContext).
	Identify func(r *http.Request) (Identity, bool)
	// CSRFSecret keys the CSRF tokens (see CSRFToken). Required for browser identities.
	CSRFSecret []byte
	// MaxBody bounds request bodies (1 MiB when 0).
	MaxBody int64
	// MaxDeployBody bounds the body of a DAG deploy, POST /api/v1/dags (16 MiB when 0).
	MaxDeployBody int64
}

// Default body bounds.
const (
	DefaultMaxBody       = 1 << 20
	DefaultMaxDeployBody = 16 << 20
)

// surface is how the audit log names where a request came from: "ui" for a browser identity
// (IAP or the local dev identity: the UI's pages calling the API), "api" for a bearer token
// (the CLI, scripts, other services).
func surface(id Identity) string {
	if id.Via == auth.ViaIAP || id.Via == auth.ViaDev {
		return "ui"
	}
	return "api"
}

// FromAuth reads the identity a package auth Guard put in the request's context.
func FromAuth(r *http.Request) (Identity, bool) {
	id, ok := auth.FromContext(r.Context())
	return Identity{Email: id.Email, Via: id.Via}, ok
}

// CSRFHeader carries the CSRF token on state-changing browser requests.
const CSRFHeader = "X-CSRF-Token"

// CSRFToken is the token a browser identity must send in X-CSRF-Token on state-changing
// requests: an HMAC of the email under the server's secret, which a page of another origin
// cannot read or compute.
func CSRFToken(secret []byte, email string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("updraft-csrf\x00" + strings.ToLower(strings.TrimSpace(email))))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether a request from id may change state: bearer-token callers always
// may; browser ones must carry the token.
func CheckCSRF(secret []byte, id Identity, r *http.Request) bool {
	if id.Via == auth.ViaIDToken || id.Via == auth.ViaOIDC {
		return true // a bearer token: a browser does not send it by itself
	}
	got := r.Header.Get(CSRFHeader)
	return len(secret) > 0 && got != "" && hmac.Equal([]byte(got), []byte(CSRFToken(secret, id.Email)))
}

// Route is one endpoint.
type Route struct {
	Method, Pattern string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error)

type server struct {
	c    *console.Console
	opts Options
}

// New returns the API handler; mount it at the server's root (it serves /api/v1/...).
func New(c *console.Console, opts Options) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxDeployBody <= 0 {
		opts.MaxDeployBody = DefaultMaxDeployBody
	}
	if opts.Identify == nil {
		opts.Identify = FromAuth
	}
	s := &server{c: c, opts: opts}
	mux := http.NewServeMux()
	paths := map[string]bool{}
	for _, rt := range s.routes() {
		limit := s.opts.MaxBody
		if rt.bigBody {
			limit = s.opts.MaxDeployBody
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt.h, limit))
		paths[rt.Pattern] = true
	}
	for p := range paths { // another method on a known path: 405
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, console.CodeNotFound, "no API endpoint "+r.URL.Path+" (see docs/openapi.yaml)")
	})
	return mux
}

type route struct {
	Route
	h handlerFunc
	// bigBody routes take bodies up to Options.MaxDeployBody instead of MaxBody.
	bigBody bool
}

// Routes lists every endpoint the handler serves.
func Routes() []Route {
	var out []Route
	for _, r := range (&server{}).routes() {
		out = append(out, r.Route)
	}
	return out
}

const v1 = "/api/v1"

func (s *server) routes() []route {
	r := func(method, pattern string, h handlerFunc) route {
		return route{Route: Route{method, v1 + pattern}, h: h}
	}
	deploy := r("POST", "/dags", s.deployDAGs)
	deploy.bigBody = true
	return []route{
		r("GET", "/me", s.me),
		r("GET", "/dags", s.listDAGs),
		deploy,
		r("GET", "/dags/{dag}", s.getDAG),
		r("PATCH", "/dags/{dag}", s.patchDAG),
		r("GET", "/dags/{dag}/grid", s.grid),
		r("GET", "/dags/{dag}/runs", s.listRuns),
		r("POST", "/dags/{dag}/runs", s.trigger),
		r("GET", "/dags/{dag}/runs/{run}", s.getRun),
		r("GET", "/runs", s.findRuns),
		r("POST", "/dags/{dag}/runs/{run}/clear", s.clearRun),
		r("GET", "/dags/{dag}/runs/{run}/tasks", s.runTasks),
		r("POST", "/dags/{dag}/runs/{run}/tasks/{task}/clear", s.clearTask),
		r("POST", "/dags/{dag}/runs/{run}/tasks/{task}/mark", s.markTask),
		r("GET", "/dags/{dag}/runs/{run}/tasks/{task}/attempts", s.attempts),
		r("GET", "/dags/{dag}/runs/{run}/tasks/{task}/attempts/{try}", s.attempt),
		r("GET", "/dags/{dag}/runs/{run}/tasks/{task}/attempts/{try}/log", s.log),
		r("GET", "/dags/{dag}/backfills", s.backfills),
		r("POST", "/dags/{dag}/backfills", s.startBackfill),
		r("DELETE", "/backfills/{id}", s.cancelBackfill),
		r("GET", "/variables", s.variables),
		r("PUT", "/variables/{name}", s.setVariable),
		r("DELETE", "/variables/{name}", s.deleteVariable),
		r("GET", "/users", s.users),
		r("PUT", "/users/{email}", s.grant),
		r("DELETE", "/users/{email}", s.revoke),
		r("GET", "/audit", s.audit),
	}
}

// errorBody is the one error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) wrap(h handlerFunc, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var id Identity
		ok := false
		if s.opts.Identify != nil {
			id, ok = s.opts.Identify(r)
		}
		if !ok || id.Email == "" {
			writeError(w, http.StatusUnauthorized, console.CodeUnauthenticated,
				"no identity: sign in, or send a Google ID token as Authorization: Bearer (see docs/api.md)")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !CheckCSRF(s.opts.CSRFSecret, id, r) {
			writeError(w, http.StatusForbidden, console.CodeForbidden,
				"missing or wrong "+CSRFHeader+" header: state-changing browser requests must carry the token the UI hands out")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		who := console.Caller{Email: id.Email, From: surface(id), Addr: clientAddr(r)}
		v, status, err := h(w, r, who)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request body is over %d bytes", mbe.Limit))
				return
			}
			ce := console.AsError(err)
			writeError(w, ce.Status, ce.Code, ce.Message)
			return
		}
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(v); err != nil {
			writeError(w, 500, console.CodeInternal, "encode the response: "+err.Error())
			return
		}
		if r.Method == http.MethodGet {
			sum := sha256.Sum256(buf.Bytes())
			etag := `"` + hex.EncodeToString(sum[:12]) + `"`
			w.Header().Set("ETag", etag)
			if matchETag(r.Header.Get("If-None-Match"), etag) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	})
}

func matchETag(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// clientAddr is the client's address for the audit log: the rightmost X-Forwarded-For entry,
// the one Cloud Run's front end added (access.ClientAddr), else the connection's peer.
func clientAddr(r *http.Request) string {
	return access.ClientAddr(r.Header.Values("X-Forwarded-For"), r.RemoteAddr)
}

// ---- request helpers

func badRequest(format string, args ...any) error {
	return console.Errorf(console.CodeBadRequest, format, args...)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil // an empty body is an empty request
		}
		return badRequest("the request body is not the JSON expected: %v", err)
	}
	return nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q is not a non-negative integer", name, v)
	}
	return n, nil
}

func limitParam(r *http.Request) (int, error) {
	n, err := intParam(r, "limit", console.DefaultLimit)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > console.MaxLimit {
		return 0, badRequest("limit must be from 1 to %d, got %d", console.MaxLimit, n)
	}
	return n, nil
}

func dryRun(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, badRequest("dry_run=%q: use true or false", v)
	}
}

// ---- handlers

func (s *server) me(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	m, err := s.c.Me(r.Context(), who)
	if err != nil {
		return nil, 0, err
	}
	tok := ""
	if len(s.opts.CSRFSecret) > 0 {
		tok = CSRFToken(s.opts.CSRFSecret, who.Email)
	}
	return struct {
		console.Me
		CSRFToken string `json:"csrf_token,omitempty"`
	}{m, tok}, 0, nil
}

func (s *server) listDAGs(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	limit, err := limitParam(r)
	if err != nil {
		return nil, 0, err
	}
	q := r.URL.Query()
	p, err := s.c.ListDAGs(r.Context(), who, console.DAGQuery{Search: q.Get("search"), Limit: limit, PageToken: q.Get("page_token")})
	return p, 0, err
}

// deployDAGs deploys DAG files. The answer is the report, 200 even when some files failed
// (failed > 0, each failed file with its problems): the valid files were deployed, and a
// client tells a partial deploy by failed. Errors (400, 403, 413) are for requests refused
// as a whole.
func (s *server) deployDAGs(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Files  []console.DAGFile     `json:"files"`
		Prune  bool                  `json:"prune"`
		Bundle *console.BundleUpload `json:"bundle"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	rep, err := s.c.Deploy(r.Context(), who, console.DeployRequest{Files: body.Files, Prune: body.Prune, DryRun: dry, Bundle: body.Bundle})
	return rep, 0, err
}

func (s *server) getDAG(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	d, err := s.c.DAG(r.Context(), who, r.PathValue("dag"))
	return d, 0, err
}

func (s *server) patchDAG(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Paused *bool `json:"paused"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	if body.Paused == nil {
		return nil, 0, badRequest(`send {"paused": true} or {"paused": false}`)
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.SetPaused(r.Context(), who, r.PathValue("dag"), *body.Paused, dry)
	return a, 0, err
}

func (s *server) grid(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	n, err := intParam(r, "runs", 25)
	if err != nil {
		return nil, 0, err
	}
	g, err := s.c.Grid(r.Context(), who, r.PathValue("dag"), console.GridQuery{Runs: n, Before: r.URL.Query().Get("before")})
	return g, 0, err
}

func (s *server) listRuns(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	limit, err := limitParam(r)
	if err != nil {
		return nil, 0, err
	}
	p, err := s.c.Runs(r.Context(), who, r.PathValue("dag"), console.PageQuery{Limit: limit, PageToken: r.URL.Query().Get("page_token")})
	return p, 0, err
}

func (s *server) trigger(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Conf        json.RawMessage `json:"conf"`
		LogicalDate *time.Time      `json:"logical_date"`
		Replace     bool            `json:"replace"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	res, err := s.c.Trigger(r.Context(), who, console.TriggerRequest{DagID: r.PathValue("dag"), Conf: body.Conf, LogicalDate: body.LogicalDate, DryRun: dry, Replace: body.Replace})
	if err != nil || dry {
		return res, 0, err
	}
	return res, http.StatusCreated, nil
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	d, err := s.c.Run(r.Context(), who, r.PathValue("dag"), r.PathValue("run"))
	return d, 0, err
}

// findRuns looks a bare run id up across DAGs: GET /runs?run_id=ID.
func (s *server) findRuns(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	refs, err := s.c.FindRuns(r.Context(), who, r.URL.Query().Get("run_id"))
	return map[string]any{"runs": refs}, 0, err
}

func (s *server) clearRun(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.ClearRun(r.Context(), who, r.PathValue("dag"), r.PathValue("run"), dry)
	return a, 0, err
}

func (s *server) runTasks(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	ts, err := s.c.RunTasks(r.Context(), who, r.PathValue("dag"), r.PathValue("run"))
	return map[string]any{"tasks": ts}, 0, err
}

func (s *server) clearTask(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Downstream bool     `json:"downstream"`
		Upstream   bool     `json:"upstream"`
		Also       []string `json:"also"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.Clear(r.Context(), who, console.ClearRequest{
		DagID: r.PathValue("dag"), RunID: r.PathValue("run"), TaskIDs: append([]string{r.PathValue("task")}, body.Also...),
		Downstream: body.Downstream, Upstream: body.Upstream, DryRun: dry,
	})
	return a, 0, err
}

func (s *server) markTask(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		State string `json:"state"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.Mark(r.Context(), who, console.MarkRequest{
		DagID: r.PathValue("dag"), RunID: r.PathValue("run"), TaskID: r.PathValue("task"), State: body.State, DryRun: dry,
	})
	return a, 0, err
}

func (s *server) attempts(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	as, err := s.c.Attempts(r.Context(), who, r.PathValue("dag"), r.PathValue("run"), r.PathValue("task"))
	return map[string]any{"attempts": as}, 0, err
}

func tryParam(r *http.Request) (int, error) {
	n, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || n < 1 {
		return 0, console.Errorf(console.CodeNotFound, "try %q: tries are numbered from 1", r.PathValue("try"))
	}
	return n, nil
}

func (s *server) attempt(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	try, err := tryParam(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.Attempt(r.Context(), who, r.PathValue("dag"), r.PathValue("run"), r.PathValue("task"), try)
	return a, 0, err
}

func (s *server) log(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	try, err := tryParam(r)
	if err != nil {
		return nil, 0, err
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return nil, 0, badRequest("after=%q is not a cursor this API handed out", v)
		}
	}
	l, err := s.c.Log(r.Context(), who, r.PathValue("dag"), r.PathValue("run"), r.PathValue("task"), try, after)
	return l, 0, err
}

func (s *server) backfills(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	bs, err := s.c.Backfills(r.Context(), who, r.PathValue("dag"))
	return map[string]any{"backfills": bs}, 0, err
}

func (s *server) startBackfill(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		From          string `json:"from"`
		To            string `json:"to"`
		Reprocess     string `json:"reprocess"`
		MaxActiveRuns int    `json:"max_active_runs"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	res, err := s.c.Backfill(r.Context(), who, console.BackfillRequest{
		DagID: r.PathValue("dag"), From: body.From, To: body.To, Reprocess: body.Reprocess, MaxActiveRuns: body.MaxActiveRuns, DryRun: dry,
	})
	if err != nil || dry || res.Existing {
		return res, 0, err
	}
	return res, http.StatusCreated, nil
}

func (s *server) cancelBackfill(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	dry, err := dryRun(r)
	if err != nil {
		return nil, 0, err
	}
	a, err := s.c.CancelBackfill(r.Context(), who, r.PathValue("id"), dry)
	return a, 0, err
}

func (s *server) variables(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	vs, err := s.c.Variables(r.Context(), who)
	return map[string]any{"variables": vs}, 0, err
}

func (s *server) setVariable(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Value *string `json:"value"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	if body.Value == nil {
		return nil, 0, badRequest(`send {"value": "..."}`)
	}
	if err := s.c.SetVariable(r.Context(), who, r.PathValue("name"), *body.Value); err != nil {
		return nil, 0, err
	}
	return map[string]string{"name": r.PathValue("name"), "value": *body.Value}, 0, nil
}

func (s *server) deleteVariable(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	return nil, http.StatusNoContent, s.c.DeleteVariable(r.Context(), who, r.PathValue("name"))
}

func (s *server) users(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	us, err := s.c.Users(r.Context(), who)
	return map[string]any{"users": us}, 0, err
}

func (s *server) grant(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	var body struct {
		Role string `json:"role"`
	}
	if err := decodeBody(r, &body); err != nil {
		return nil, 0, err
	}
	u, err := s.c.Grant(r.Context(), who, r.PathValue("email"), body.Role)
	return u, 0, err
}

func (s *server) revoke(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	return nil, http.StatusNoContent, s.c.Revoke(r.Context(), who, r.PathValue("email"))
}

func (s *server) audit(w http.ResponseWriter, r *http.Request, who console.Caller) (any, int, error) {
	limit, err := limitParam(r)
	if err != nil {
		return nil, 0, err
	}
	q := r.URL.Query()
	p, err := s.c.Audit(r.Context(), who, console.AuditQuery{DagID: q.Get("dag_id"), Limit: limit, PageToken: q.Get("page_token")})
	return p, 0, err
}
