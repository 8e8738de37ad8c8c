package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
)

// The CLI with --api goes through the REST API, served here over the emulators; a stand-in
// guard maps bearer tokens to identities as package auth's ID-token guard does.
func TestCLIOverAPI(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	b.Advance(t) // starts the runs the API's trigger creates
	b.Grant(t, "op@example.com", access.Operator)
	b.Grant(t, "viewer@example.com", access.Viewer)
	b.Deploy(t, `id: etl
owner: owner@example.com
timezone: Asia/Seoul
params: {region: eu}
tasks:
  - {id: extract, type: shell, with: {command: "echo extracting"}}
  - {id: load, type: shell, with: {command: "echo loading"}, needs: [extract]}
`)
	tokens := map[string]string{"tok-op": "op@example.com", "tok-viewer": "viewer@example.com"}
	h := api.New(b.Console, api.Options{CSRFSecret: []byte("s")})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if email, ok := tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]; ok {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Email: email, Via: auth.ViaIDToken}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	run := func(token string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"UPDRAFT_ID_TOKEN": token, "HOME": t.TempDir()}
		a := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
		code := a.Run(context.Background(), append([]string{"--api", srv.URL}, args...))
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run("tok-op", "trigger", "etl", "--conf", `{"region": "us"}`)
	if code != 0 || !strings.HasPrefix(out, "triggered etl/manual__") {
		t.Fatalf("trigger: %d %q %q", code, out, errOut)
	}
	runID := strings.TrimSpace(strings.TrimPrefix(out, "triggered etl/"))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling the store
		if v, err := b.Store.GetRun(b.Ctx, "etl", runID); err == nil && v.Rec.State != "queued" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the triggered run was not started by the advancer")
		}
	}

	// One run per logical date through the API too: the second trigger names the first run.
	code, out, _ = run("tok-op", "trigger", "etl", "--logical-date", "2025-01-15T00:00:00Z")
	if code != 0 || !strings.Contains(out, "etl/manual__2025-01-15T00:00:00Z") {
		t.Fatalf("trigger for 2025-01-15: %d %q", code, out)
	}
	code, _, errOut = run("tok-op", "trigger", "etl", "--logical-date", "2025-01-15T09:00:00+09:00")
	if code != 1 || !strings.Contains(errOut, "(conflict)") || !strings.Contains(errOut, "already has a run with logical date 2025-01-15T00:00:00Z: etl/manual__2025-01-15T00:00:00Z") {
		t.Fatalf("a second trigger for the same logical date: %d %q", code, errOut)
	}

	code, out, errOut = run("tok-viewer", "runs", "list", "etl")
	if code != 0 || !strings.Contains(out, runID) || !strings.Contains(out, "manual") || !strings.Contains(out, "LOGICAL DATE (Asia/Seoul)") ||
		!strings.Contains(out, "2025-01-15T09:00:00+09:00") {
		t.Fatalf("runs list: %d %q %q (want the logical date in the DAG's zone, named)", code, out, errOut)
	}

	code, out, errOut = run("tok-op", "tasks", "clear", "etl/"+runID, "extract", "--downstream", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "extract, load") {
		t.Fatalf("tasks clear --dry-run: %d %q %q", code, out, errOut)
	}
	code, out, errOut = run("tok-op", "tasks", "clear", "etl/"+runID, "extract", "--downstream")
	if code != 0 || !strings.Contains(out, "cleared") {
		t.Fatalf("tasks clear: %d %q %q", code, out, errOut)
	}

	code, out, errOut = run("tok-op", "runs", "show", "etl/"+runID)
	if code != 0 || !strings.Contains(out, "extract") || !strings.Contains(out, "load") || !strings.Contains(out, "+09:00) (Asia/Seoul)") {
		t.Fatalf("runs show: %d %q %q (want the data interval in the DAG's zone, named)", code, out, errOut)
	}

	// A viewer is refused, with the server's message; the refusal is in the audit log.
	code, _, errOut = run("tok-viewer", "trigger", "etl")
	if code != 1 || !strings.Contains(errOut, "(forbidden)") || !strings.Contains(errOut, "operator") {
		t.Fatalf("viewer trigger: %d %q", code, errOut)
	}
	entries, err := b.Access.Audit(b.Ctx, "etl", 10)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range entries {
		if e.Who == "viewer@example.com" && e.Action == "dag.trigger" && e.Result == access.ResultRefused {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("audit = %+v; want one refused trigger by the viewer", entries)
	}

	// Bad input and unknown ids come back as errors with the server's message.
	code, _, errOut = run("tok-op", "tasks", "mark", "etl/nope", "extract", "success")
	if code != 1 || !strings.Contains(errOut, "(not_found)") {
		t.Fatalf("unknown run: %d %q", code, errOut)
	}
	// A bare run id is looked up across DAGs over the API too.
	code, out, errOut = run("tok-op", "runs", "show", runID)
	if code != 0 || !strings.Contains(out, "run etl/"+runID) {
		t.Fatalf("bare run id: %d %q %q", code, out, errOut)
	}
	code, _, errOut = run("tok-op", "runs", "show", "manual__1999-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(errOut, "DAG/RUN_ID") || !strings.Contains(errOut, "(not_found)") {
		t.Fatalf("unknown bare run id: %d %q", code, errOut)
	}
	code, _, errOut = run("tok-op", "tick")
	if code != 1 || !strings.Contains(errOut, "not available over --api") {
		t.Fatalf("tick over the API: %d %q", code, errOut)
	}
	code, _, errOut = run("nobody", "dags", "list")
	if code != 1 || !strings.Contains(errOut, "(unauthenticated)") {
		t.Fatalf("no identity: %d %q", code, errOut)
	}
}

// `updraft --api URL dags deploy` sends the files dag.ListFiles finds to the API and prints
// one line per file; a bad file is reported with file:line and makes it exit 1.
func TestCLIDeployOverAPI(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	b.Grant(t, "admin@example.com", access.Admin)
	b.Grant(t, "op@example.com", access.Operator)
	tokens := map[string]string{"tok-admin": "admin@example.com", "tok-op": "op@example.com", "iap-admin": "admin@example.com"}
	h := api.New(b.Console, api.Options{CSRFSecret: []byte("s")})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if email, ok := tokens[tok]; ok {
			via := auth.ViaIDToken
			if strings.HasPrefix(tok, "iap-") { // as if IAP had passed the request on with its header
				via = auth.ViaIAP
			}
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Email: email, Via: via}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	run := func(token string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"UPDRAFT_ID_TOKEN": token, "HOME": t.TempDir()}
		a := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
		code := a.Run(context.Background(), append([]string{"--api", srv.URL}, args...))
		return code, out.String(), errOut.String()
	}

	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const good = "id: %s\nowner: a@example.com\ntasks:\n  - {id: t, type: noop}\n"
	write("a.yaml", fmt.Sprintf(good, "alpha"))
	write("team/b.yml", fmt.Sprintf(good, "beta"))
	write(".hidden/c.yaml", fmt.Sprintf(good, "hidden"))
	write("notes.txt", "not a DAG")
	write("bad.yaml", "id: bad\nowner: a@example.com\ntasks:\n  - {id: t, type: nope}\n")

	code, out, errOut := run("tok-admin", "dags", "deploy", "--prune", dir)
	if code != 1 || !strings.Contains(out, "created   alpha ("+filepath.ToSlash(filepath.Join(dir, "a.yaml"))+")") ||
		!strings.Contains(out, "created   beta (") || strings.Contains(out, "hidden") {
		t.Fatalf("deploy with a bad file: %d %q %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "bad.yaml:4: ") || !strings.Contains(errOut, "not pruning") || !strings.Contains(errOut, "1 file(s) not deployed") {
		t.Fatalf("deploy with a bad file, stderr: %q", errOut)
	}

	// The operator may not deploy.
	code, _, errOut = run("tok-op", "dags", "deploy", filepath.Join(dir, "a.yaml"))
	if code != 1 || !strings.Contains(errOut, "(forbidden)") || !strings.Contains(errOut, "admin") {
		t.Fatalf("operator deploy: %d %q", code, errOut)
	}

	// Fixed: everything loads, prune runs, the unchanged files say so.
	if err := os.Remove(filepath.Join(dir, "bad.yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run("tok-admin", "dags", "deploy", "--prune", dir)
	if code != 0 || strings.Count(out, "unchanged") != 2 || errOut != "" {
		t.Fatalf("clean deploy: %d %q %q", code, out, errOut)
	}
	code, out, errOut = run("tok-admin", "dags", "deploy", "--prune", "--dry-run", filepath.Join(dir, "a.yaml"))
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "pruned    beta") {
		t.Fatalf("dry run: %d %q %q", code, out, errOut)
	}
	if v, err := b.Store.GetDAG(b.Ctx, "beta"); err != nil || !v.Rec.Active {
		t.Fatalf("beta after a dry run: %+v, %v; want it still active", v, err)
	}

	// Through IAP the API wants a CSRF token: the CLI fetches it from /me and goes on.
	code, out, errOut = run("iap-admin", "dags", "deploy", filepath.Join(dir, "a.yaml"))
	if code != 0 || !strings.Contains(out, "unchanged alpha") {
		t.Fatalf("deploy through IAP: %d %q %q", code, out, errOut)
	}
}
