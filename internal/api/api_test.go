package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
)

func TestMain(m *testing.M) { emutest.Main(m) }

var secret = []byte("test-csrf-secret")

const dagSrc = `id: etl
owner: owner@example.com
params: {region: eu}
tasks:
  - {id: extract, type: shell, with: {command: "echo extracting"}}
  - {id: load, type: shell, with: {command: "echo loading"}, needs: [extract]}
`

type env struct {
	*consoletest.Bundle
	srv *httptest.Server
}

// setup serves the API over the emulators; requests name their identity in test headers,
// which a stand-in guard puts in the context as package auth's guards do.
func setup(t *testing.T) *env {
	t.Helper()
	b := consoletest.New(t)
	b.Grant(t, "viewer@example.com", access.Viewer)
	b.Grant(t, "op@example.com", access.Operator)
	b.Grant(t, "admin@example.com", access.Admin)
	b.Deploy(t, dagSrc)
	h := api.New(b.Console, api.Options{CSRFSecret: secret})
	guard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if email := r.Header.Get("X-Test-Email"); email != "" {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Email: email, Via: r.Header.Get("X-Test-Via")}))
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(guard)
	t.Cleanup(srv.Close)
	return &env{Bundle: b, srv: srv}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path, email, via string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if email != "" {
		req.Header.Set("X-Test-Email", email)
		req.Header.Set("X-Test-Via", via)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func wantError(t *testing.T, r resp, status int, code, msgPart string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != status || e.Error.Code != code || !strings.Contains(e.Error.Message, msgPart) {
		t.Fatalf("got %d %s; want %d with code %s and a message containing %q", r.status, r.body, status, code, msgPart)
	}
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

const (
	viewer = "viewer@example.com"
	op     = "op@example.com"
	admin  = "admin@example.com"
	cli    = "idtoken"
)

func TestErrorsAndAccess(t *testing.T) {
	t.Parallel()
	e := setup(t)

	wantError(t, e.do(t, "GET", "/api/v1/dags", "", "", nil), 401, "unauthenticated", "no identity")
	wantError(t, e.do(t, "GET", "/api/v1/nothing", viewer, cli, nil), 404, "not_found", "/api/v1/nothing")
	wantError(t, e.do(t, "DELETE", "/api/v1/dags", viewer, cli, nil), 405, "method_not_allowed", "DELETE")
	wantError(t, e.do(t, "GET", "/api/v1/dags/nope", viewer, cli, nil), 404, "not_found", `"nope"`)
	wantError(t, e.do(t, "GET", "/api/v1/dags/etl/runs/manual__nope", viewer, cli, nil), 404, "not_found", "manual__nope")
	wantError(t, e.do(t, "GET", "/api/v1/dags", "stranger@example.com", cli, nil), 403, "forbidden", "holds no role")

	// A viewer calling an operator endpoint: 403, audited.
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", viewer, cli, map[string]any{}), 403, "forbidden", "operator")
	audit := decode[struct {
		Entries []struct{ Who, Action, Result, From string }
	}](t, e.do(t, "GET", "/api/v1/audit?dag_id=etl", viewer, cli, nil))
	if len(audit.Entries) != 1 || audit.Entries[0].Who != viewer || audit.Entries[0].Result != "refused" || !strings.HasPrefix(audit.Entries[0].From, "api") {
		t.Fatalf("audit = %+v", audit.Entries)
	}

	// Bad input.
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", op, cli, []byte(`{"conf": {"region": eu}}`)), 400, "bad_request", "not the JSON expected")
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", op, cli, map[string]any{"conf": map[string]any{"zone": "x"}}), 400, "bad_request", "zone")
	wantError(t, e.do(t, "PATCH", "/api/v1/dags/etl", op, cli, map[string]any{}), 400, "bad_request", "paused")
	wantError(t, e.do(t, "GET", "/api/v1/dags?limit=0", viewer, cli, nil), 400, "bad_request", "limit")
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs?dry_run=maybe", op, cli, nil), 400, "bad_request", "dry_run")
	big := append([]byte(`{"conf": {"region": "`), bytes.Repeat([]byte("x"), 2<<20)...)
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", op, cli, append(big, `"}}`...)), 413, "too_large", "bytes")

	// Admin-only.
	wantError(t, e.do(t, "PUT", "/api/v1/variables/region", op, cli, map[string]any{"value": "eu"}), 403, "forbidden", "admin")
	if r := e.do(t, "PUT", "/api/v1/variables/region", admin, cli, map[string]any{"value": "eu"}); r.status != 200 {
		t.Fatalf("set variable: %d %s", r.status, r.body)
	}
	if r := e.do(t, "PUT", "/api/v1/users/new@example.com", admin, cli, map[string]any{"role": "viewer"}); r.status != 200 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	if r := e.do(t, "DELETE", "/api/v1/users/new@example.com", admin, cli, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, "DELETE", "/api/v1/variables/nope", admin, cli, nil), 404, "not_found", "nope")
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// A browser identity needs the token on state-changing requests, not on reads.
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", op, "iap", map[string]any{}), 403, "forbidden", "X-CSRF-Token")
	wantError(t, e.do(t, "POST", "/api/v1/dags/etl/runs", op, "dev", map[string]any{}, "X-CSRF-Token", api.CSRFToken(secret, admin)), 403, "forbidden", "X-CSRF-Token")
	if r := e.do(t, "GET", "/api/v1/dags", op, "iap", nil); r.status != 200 {
		t.Fatalf("browser read: %d %s", r.status, r.body)
	}
	me := decode[struct {
		Email     string `json:"email"`
		Role      string `json:"role"`
		CSRFToken string `json:"csrf_token"`
	}](t, e.do(t, "GET", "/api/v1/me", op, "iap", nil))
	if me.Role != "operator" || me.CSRFToken != api.CSRFToken(secret, op) {
		t.Fatalf("me = %+v", me)
	}
	if r := e.do(t, "POST", "/api/v1/dags/etl/runs", op, "iap", map[string]any{}, "X-CSRF-Token", me.CSRFToken); r.status != 201 {
		t.Fatalf("browser trigger with token: %d %s", r.status, r.body)
	}
	// The audit log says where each came from: a browser identity is the UI, a bearer token the API.
	froms := func() map[string]int {
		audit := decode[struct {
			Entries []struct{ Action, Result, From string }
		}](t, e.do(t, "GET", "/api/v1/audit?dag_id=etl", viewer, cli, nil))
		n := map[string]int{}
		for _, x := range audit.Entries {
			if x.Action == "dag.trigger" && x.Result == "ok" {
				n[strings.Fields(x.From)[0]]++
			}
		}
		return n
	}
	if n := froms(); n["ui"] != 1 || n["api"] != 0 {
		t.Fatalf("triggers by surface = %v; want the browser's from ui", n)
	}
	// A bearer ID token (the CLI) needs none.
	e.Clock.Add(1e9)
	if r := e.do(t, "POST", "/api/v1/dags/etl/runs", op, cli, map[string]any{}); r.status != 201 {
		t.Fatalf("CLI trigger: %d %s", r.status, r.body)
	}
	if n := froms(); n["ui"] != 1 || n["api"] != 1 {
		t.Fatalf("triggers by surface = %v; want one from ui, one from api", n)
	}
}

type deployReport struct {
	DryRun bool `json:"dry_run"`
	Files  []struct {
		File     string `json:"file"`
		DagID    string `json:"dag_id"`
		Outcome  string `json:"outcome"`
		Problems []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"files"`
	Created int `json:"created"`
	Failed  int `json:"failed"`
}

func TestDeployDAGs(t *testing.T) {
	t.Parallel()
	e := setup(t)
	good := map[string]any{"name": "dags/good.yaml", "source": "id: good\nowner: a@example.com\ntasks:\n  - {id: t, type: noop}\n"}
	bad := map[string]any{"name": "dags/bad.yaml", "source": "id: bad\nowner: a@example.com\ntasks:\n  - {id: t, type: nope}\n"}

	wantError(t, e.do(t, "POST", "/api/v1/dags", op, cli, map[string]any{"files": []any{good}}), 403, "forbidden", "admin")
	wantError(t, e.do(t, "POST", "/api/v1/dags", admin, cli, []byte(`{"files": [`)), 400, "bad_request", "not the JSON expected")
	wantError(t, e.do(t, "POST", "/api/v1/dags", admin, cli, map[string]any{"files": []any{good}, "purge": true}), 400, "bad_request", "purge")
	wantError(t, e.do(t, "POST", "/api/v1/dags", admin, cli, map[string]any{}), 400, "bad_request", "files is empty")
	over := append([]byte(`{"files": [{"name": "x.yaml", "source": "`), bytes.Repeat([]byte("#"), api.DefaultMaxDeployBody)...)
	wantError(t, e.do(t, "POST", "/api/v1/dags", admin, cli, append(over, `"}]}`...)), 413, "too_large", "bytes")

	// A dry run: the report, nothing deployed.
	r := e.do(t, "POST", "/api/v1/dags?dry_run=true", admin, cli, map[string]any{"files": []any{good, bad}})
	rep := decode[deployReport](t, r)
	if r.status != 200 || !rep.DryRun || rep.Created != 1 || rep.Failed != 1 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, "GET", "/api/v1/dags/good", viewer, cli, nil), 404, "not_found", "good")

	// Partial success is 200 with failed > 0 and the failed file's problems, file:line.
	r = e.do(t, "POST", "/api/v1/dags", admin, cli, map[string]any{"files": []any{good, bad}})
	rep = decode[deployReport](t, r)
	if r.status != 200 || rep.DryRun || rep.Created != 1 || rep.Failed != 1 || rep.Files[0].Outcome != "created" ||
		rep.Files[1].Outcome != "failed" || len(rep.Files[1].Problems) == 0 || rep.Files[1].Problems[0].Line != 4 {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/api/v1/dags/good", viewer, cli, nil); r.status != 200 || !strings.Contains(string(r.body), `"file":"dags/good.yaml"`) {
		t.Fatalf("the deployed DAG: %d %s", r.status, r.body)
	}

	// This route takes bodies over the others' 1 MiB: files of up to 1 MiB each.
	pad := "\n#" + strings.Repeat("x", 700<<10)
	big := map[string]any{"name": "big.yaml", "source": good["source"].(string) + pad}
	big2 := map[string]any{"name": "big2.yaml", "source": strings.Replace(good["source"].(string), "id: good", "id: good2", 1) + pad}
	r = e.do(t, "POST", "/api/v1/dags", admin, cli, map[string]any{"files": []any{big, big2}})
	if rep := decode[deployReport](t, r); r.status != 200 || rep.Failed != 0 || len(rep.Files) != 2 {
		t.Fatalf("a 1.4 MB deploy: %d %.500s", r.status, r.body)
	}
}

func TestPaginationETagAndDryRun(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for range 7 {
		e.Trigger(t, "etl")
	}
	var ids []string
	tok, pages := "", 0
	for {
		r := e.do(t, "GET", "/api/v1/dags/etl/runs?limit=3&page_token="+tok, viewer, cli, nil)
		p := decode[struct {
			Runs []struct {
				RunID string `json:"run_id"`
			}
			Next string `json:"next_page_token"`
		}](t, r)
		pages++
		for _, x := range p.Runs {
			ids = append(ids, x.RunID)
		}
		if tok = p.Next; tok == "" {
			break
		}
	}
	sorted := append([]string(nil), ids...)
	sort.Sort(sort.Reverse(sort.StringSlice(sorted)))
	if pages != 3 || len(ids) != 7 || fmt.Sprint(ids) != fmt.Sprint(sorted) {
		t.Fatalf("%d pages, runs %v; want 3 pages of 7 distinct runs, newest first", pages, ids)
	}
	wantError(t, e.do(t, "GET", "/api/v1/dags/etl/runs?page_token=@@", viewer, cli, nil), 400, "bad_request", "page_token")

	// ETag: an unchanged grid is 304; a change gives a new body.
	g := e.do(t, "GET", "/api/v1/dags/etl/grid", viewer, cli, nil)
	etag := g.header.Get("ETag")
	if g.status != 200 || etag == "" {
		t.Fatalf("grid: %d, ETag %q", g.status, etag)
	}
	if r := e.do(t, "GET", "/api/v1/dags/etl/grid", viewer, cli, nil, "If-None-Match", etag); r.status != 304 || len(r.body) != 0 {
		t.Fatalf("unchanged grid: %d %s", r.status, r.body)
	}

	// Dry run: the preview, nothing written.
	_, w0 := e.Store.Counts()
	r := e.do(t, "POST", "/api/v1/dags/etl/runs/"+ids[0]+"/tasks/extract/clear?dry_run=true", op, cli, map[string]any{"downstream": true})
	a := decode[struct {
		DryRun  bool     `json:"dry_run"`
		TaskIDs []string `json:"task_ids"`
	}](t, r)
	if r.status != 200 || !a.DryRun || fmt.Sprint(a.TaskIDs) != "[extract load]" {
		t.Fatalf("clear preview: %d %s", r.status, r.body)
	}
	if _, w1 := e.Store.Counts(); w1 != w0 {
		t.Fatalf("the dry run wrote %d documents", w1-w0)
	}
	if r := e.do(t, "POST", "/api/v1/dags/etl/runs/"+ids[0]+"/tasks/load/mark", op, cli, map[string]any{"state": "failed"}); r.status != 200 {
		t.Fatalf("mark: %d %s", r.status, r.body)
	}
	g2 := e.do(t, "GET", "/api/v1/dags/etl/grid", viewer, cli, nil, "If-None-Match", etag)
	if g2.status != 200 || g2.header.Get("ETag") == etag {
		t.Fatalf("changed grid: %d, ETag %q (was %q)", g2.status, g2.header.Get("ETag"), etag)
	}
	wantError(t, e.do(t, "GET", "/api/v1/dags/etl/runs/"+ids[0]+"/tasks/extract/attempts/1/log", viewer, cli, nil), 404, "not_found", "not started")
}

// Every route the handler serves is in docs/openapi.yaml, and every path there is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                            `yaml:"openapi"`
		Paths   map[string]map[string]interface{} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q; want 3.1", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch":
				documented[strings.ToUpper(method)+" /api/v1"+path] = true
			}
		}
	}
	served := map[string]bool{}
	for _, r := range api.Routes() {
		served[r.Method+" "+r.Pattern] = true
		if !documented[r.Method+" "+r.Pattern] {
			t.Errorf("%s %s is served but not in docs/openapi.yaml", r.Method, r.Pattern)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("%s is in docs/openapi.yaml but not served", k)
		}
	}
}
