package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
	"github.com/updraft-dev/updraft/internal/fsstore"
)

// opsMode is one way of running the CLI's operations: in-process (local) or over --api.
type opsMode struct {
	name string
	b    *consoletest.Bundle
	run  func(t *testing.T, who string, args ...string) (int, string, string)
}

// newOpsProject is a project both modes see the same: a DAG with a finished run (its logs on
// disk), and a viewer, an operator and an admin.
func newOpsProject(t *testing.T) *consoletest.Bundle {
	b := consoletest.New(t)
	for email, role := range map[string]access.Role{"viewer@example.com": access.Viewer, "op@example.com": access.Operator, "admin@example.com": access.Admin} {
		b.Grant(t, email, role)
	}
	b.Deploy(t, `id: etl
owner: owner@example.com
schedule: "0 0 * * *"
start: 2025-01-01
timezone: Asia/Seoul
params: {region: eu}
tasks:
  - {id: extract, type: shell, with: {command: "echo extracting {{ shq .params.region }}"}}
  - {id: load, type: shell, with: {command: "echo loading"}, needs: [extract]}
`)
	r := b.Trigger(t, "etl")
	b.Drive(t, r)
	return b
}

// The CLI's operations commands give the same output, exit code and audit entry run
// in-process (acting as UPDRAFT_USER) and over --api (acting as the ID token's email): one
// command, two implementations of console.Operations.
func TestOperationsAreTheSameLocallyAndOverTheAPI(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	localB := newOpsProject(t)
	local := opsMode{name: "local", b: localB, run: func(t *testing.T, who string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		env := map[string]string{
			"GOOGLE_CLOUD_PROJECT":    localB.Project,
			"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
			"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
			"UPDRAFT_USER":            who,
			"UPDRAFT_HOME":            home,
		}
		// The project's clock, as the API's console has its own: times "now" match.
		a := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }, Now: localB.Clock.Now}
		code := a.Run(context.Background(), args)
		return code, out.String(), errOut.String()
	}}
	apiB := newOpsProject(t)
	h := api.New(apiB.Console, api.Options{CSRFSecret: []byte("s")})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if email, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer tok-"); ok {
			r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Email: email, Via: auth.ViaIDToken}))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	overAPI := opsMode{name: "--api", b: apiB, run: func(t *testing.T, who string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		env := map[string]string{"UPDRAFT_ID_TOKEN": "tok-" + who, "UPDRAFT_HOME": home}
		a := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
		code := a.Run(context.Background(), append([]string{"--api", srv.URL}, args...))
		return code, out.String(), errOut.String()
	}}

	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, []byte("id: other\nowner: a@example.com\ntasks:\n  - {id: t, type: noop}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		viewer, op, admin = "viewer@example.com", "op@example.com", "admin@example.com"
		run1              = "etl/manual__2025-01-10T00:30:00Z"
	)
	// Each case, in order (later ones see what earlier ones did). audit is the entry the case
	// appends, as "who action dag/run/task/subject result" ("" for none).
	cases := []struct {
		who   string
		args  []string
		code  int
		want  string // in stdout or stderr
		audit string
	}{
		{viewer, []string{"dags", "list"}, 0, "etl  0 0 * * *  Asia/Seoul", ""},
		{viewer, []string{"runs", "list", "etl"}, 0, "manual__2025-01-10T00:30:00Z success manual 2025-01-10T09:30:00+09:00", ""},
		{viewer, []string{"runs", "list", "nope"}, 1, `no DAG "nope" is deployed`, ""},
		{viewer, []string{"runs", "list", "etl", "-n", "zero"}, 2, "invalid value", ""},
		{viewer, []string{"runs", "show", run1}, 0, "extract success 1/1", ""},
		{viewer, []string{"runs", "show", "manual__2025-01-10T00:30:00Z"}, 0, "run " + run1 + ": success", ""},
		{viewer, []string{"runs", "show", "manual__1999-01-01T00:00:00Z"}, 1, "(not_found)", ""},
		{viewer, []string{"logs", run1, "extract"}, 0, "extracting eu", ""},
		{viewer, []string{"logs", run1, "nope"}, 1, `has no task "nope"`, ""},
		{viewer, []string{"logs", run1, "extract", "--json", "--try", "1"}, 0, `"message":"extracting eu"`, ""},
		{viewer, []string{"logs", "etl/", "extract"}, 2, "name a run as DAG/RUN_ID", ""},
		{viewer, []string{"logs", run1, "extract", "--try", "7"}, 1, `task extract of ` + run1 + ` has no try 7 (its last is 1) (not_found)`, ""},
		{op, []string{"trigger", "etl", "--logical-date", "2025-01-05T00:00:00Z", "--conf", `{"region": "us"}`}, 0,
			"triggered etl/manual__2025-01-05T00:00:00Z", op + " dag.trigger etl/// ok"},
		{op, []string{"trigger", "etl", "--logical-date", "2025-01-05T09:00:00+09:00"}, 1,
			"etl/manual__2025-01-05T00:00:00Z (one run per DAG", op + " dag.trigger etl/// refused"},
		{viewer, []string{"trigger", "etl", "--logical-date", "2025-01-06T00:00:00Z"}, 1,
			"viewer@example.com holds only viewer; on DAG etl for dag.trigger needs operator", viewer + " dag.trigger etl/// refused"},
		{op, []string{"trigger", "nope"}, 1, `no DAG "nope" is deployed`, ""},
		{op, []string{"trigger", "etl", "--conf", `["a"]`}, 2, "--conf must be a JSON object", ""},
		{op, []string{"trigger", "etl", "--conf", `{"region": 3}`}, 1, "region", op + " dag.trigger etl/// refused"},
		{op, []string{"trigger", "etl", "--logical-date", "yesterday"}, 2, "is not RFC 3339", ""},
		{op, []string{"trigger", "etl", "--logical-date", "2025-01-07T00:00:00Z", "--dry-run"}, 0, "dry run, nothing changed: would start run manual__2025-01-07T00:00:00Z", ""},
		{op, []string{"tasks", "mark", run1, "load", "failed", "--dry-run"}, 0, "would mark load of " + run1 + " failed", ""},
		{op, []string{"tasks", "mark", run1, "load", "failed"}, 0, "mark load of " + run1 + " failed", op + " task.mark etl/manual__2025-01-10T00:30:00Z/load/ ok"},
		{op, []string{"tasks", "mark", run1, "load", "done"}, 2, "success or failed", ""},
		{op, []string{"tasks", "clear", run1, "extract", "--downstream", "--dry-run"}, 0, "would clear 2 task(s) of " + run1 + ": extract, load", ""},
		{op, []string{"tasks", "clear", run1, "nope"}, 1, `has no task "nope"`, op + " task.clear etl/manual__2025-01-10T00:30:00Z/nope/ refused"},
		{op, []string{"runs", "clear", run1, "--dry-run"}, 0, "would clear every task (2) of " + run1, ""},
		{op, []string{"tasks", "clear", run1, "extract", "--downstream"}, 0, "cleared 2 task(s) of " + run1 + ": extract, load",
			op + " task.clear etl/manual__2025-01-10T00:30:00Z/extract/ ok"},
		{op, []string{"trigger", "etl", "--logical-date", "2025-01-10T00:30:00Z", "--replace"}, 1,
			"etl/manual__2025-01-10T00:30:00Z is still running: only a finished run is replaced", op + " dag.trigger etl/// refused"},
		{op, []string{"runs", "clear", run1}, 0, "cleared 1 task(s) of " + run1, op + " run.clear etl/manual__2025-01-10T00:30:00Z// ok"},
		{op, []string{"dags", "pause", "etl"}, 0, "paused etl", op + " dag.pause etl/// ok"},
		{op, []string{"dags", "unpause", "etl", "--dry-run"}, 0, "would unpause etl", ""},
		{op, []string{"dags", "unpause", "etl"}, 0, "unpaused etl", op + " dag.unpause etl/// ok"},
		{op, []string{"backfill", "etl", "--from", "2025-01-02", "--to", "2025-01-03", "--dry-run"}, 0, "2 interval(s): 2 new run(s)", ""},
		{op, []string{"backfill", "etl", "--from", "2025-01-02", "--to", "2025-01-03", "--no-wait"}, 0,
			"backfill etl~2025-01-02~2025-01-03: 2 interval(s)", op + " backfill.start etl///2025-01-02..2025-01-03 ok"},
		{op, []string{"backfill", "etl", "--from", "2025-01-03", "--to", "2025-01-02"}, 1, "2025-01-03 is after to 2025-01-02", op + " backfill.start etl///2025-01-03..2025-01-02 refused"},
		{viewer, []string{"backfill", "status", "etl"}, 0, "etl~2025-01-02~2025-01-03 running 2", ""},
		{op, []string{"backfill", "cancel", "etl~2025-01-02~2025-01-03"}, 0, "cancelled backfill etl~2025-01-02~2025-01-03",
			op + " backfill.cancel etl///etl~2025-01-02~2025-01-03 ok"},
		{op, []string{"vars", "set", "region", "asia"}, 1, "needs admin", op + " variables.set ///region refused"},
		{admin, []string{"vars", "set", "region", "asia"}, 0, "set region", admin + " variables.set ///region ok"},
		{viewer, []string{"vars", "get", "region"}, 0, "asia", ""},
		{viewer, []string{"vars", "list"}, 0, "region asia", ""},
		{admin, []string{"vars", "delete", "region"}, 0, "deleted region", admin + " variables.delete ///region ok"},
		{viewer, []string{"vars", "get", "region"}, 1, `variable "region" is not set`, ""},
		{admin, []string{"users", "list"}, 0, "op@example.com operator test", ""},
		{op, []string{"users", "list"}, 1, "needs admin", ""},
		{admin, []string{"users", "grant", "Kim@Example.com", "viewer"}, 0, "granted viewer to kim@example.com", admin + " users.grant ///kim@example.com ok"},
		{admin, []string{"users", "grant", "kim@example.com", "operator"}, 0, "granted operator to kim@example.com (was viewer)", admin + " users.grant ///kim@example.com ok"},
		{admin, []string{"users", "grant", "kim", "operator"}, 2, "not an email address", ""},
		{op, []string{"users", "grant", "lee@example.com", "admin"}, 1, "needs admin", op + " users.grant ///lee@example.com refused"},
		{admin, []string{"users", "revoke", "kim@example.com"}, 0, "revoked kim@example.com's role", admin + " users.revoke ///kim@example.com ok"},
		{admin, []string{"users", "revoke", "kim@example.com"}, 1, "holds no role", ""},
		{op, []string{"dags", "deploy", other}, 1, "needs admin", op + " dags.deploy ///1 file(s) refused"},
		{admin, []string{"dags", "deploy", "--dry-run", other}, 0, "dry run, nothing changed", ""},
		{admin, []string{"dags", "deploy", other}, 0, "created   other (" + filepath.ToSlash(other) + ")", admin + " dags.deploy ///1 file(s) ok"},
		{viewer, []string{"tick"}, 0, "", ""}, // not an operation: --api refuses it (checked below)
	}
	for _, c := range cases {
		if c.args[0] == "tick" {
			continue
		}
		name := strings.Join(c.args, " ")
		var got [2]string
		for i, m := range []opsMode{local, overAPI} {
			before := auditIDs(t, m.b)
			code, out, errOut := m.run(t, c.who, c.args...)
			text := normalizeOutput(out + "\n--- stderr\n" + errOut)
			if code != c.code || !strings.Contains(text, normalizeOutput(c.want)) {
				t.Fatalf("%s: %s as %s: exit %d; want %d with %q\n%s", m.name, name, c.who, code, c.code, c.want, text)
			}
			entries := newAuditEntries(t, m.b, before)
			audit := ""
			switch len(entries) {
			case 0:
			case 1:
				e := entries[0]
				audit = fmt.Sprintf("%s %s %s/%s/%s/%s %s", e.Who, e.Action, e.DagID, e.RunID, e.TaskID, e.Subject, e.Result)
				if wantFrom := map[int]string{0: "cli", 1: "api "}[i]; !strings.HasPrefix(e.From, wantFrom) {
					t.Errorf("%s: %s: audit from %q; want %q…", m.name, name, e.From, wantFrom)
				}
			default:
				t.Fatalf("%s: %s: %d audit entries; want at most one: %+v", m.name, name, len(entries), entries)
			}
			if audit != c.audit {
				t.Fatalf("%s: %s: audit entry %q; want %q", m.name, name, audit, c.audit)
			}
			got[i] = fmt.Sprintf("exit %d\n%s", code, text)
		}
		if got[0] != got[1] {
			t.Errorf("%s as %s differs:\nlocal:\n%s\n--api:\n%s", name, c.who, got[0], got[1])
		}
	}
	if code, _, errOut := overAPI.run(t, viewer, "tick"); code != 1 || !strings.Contains(errOut, "not available over --api") {
		t.Fatalf("tick over --api: exit %d %q; want it refused: it is not an operation", code, errOut)
	}
}

var (
	durationPattern  = regexp.MustCompile(`\b[0-9][0-9.hmµns]*(ms|µs|ns|s|m|h)…?(\s|$)`)
	clockPattern     = regexp.MustCompile(`\b\d\d:\d\d:\d\d\.\d{3} [A-Z]{3}\b`)
	attemptIDPattern = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	jsonTimePattern  = regexp.MustCompile(`"time":"[^"]*"`)
	spacesPattern    = regexp.MustCompile(`[ \t]+`)
)

// normalizeOutput evens out what differs between two projects and no command controls:
// durations, the times of log lines (written by the worker's clock), attempt ids, and the
// column widths they cause.
func normalizeOutput(s string) string {
	s = durationPattern.ReplaceAllString(s, "DURATION$2")
	s = clockPattern.ReplaceAllString(s, "TIME")
	s = attemptIDPattern.ReplaceAllString(s, "ATTEMPT")
	s = jsonTimePattern.ReplaceAllString(s, `"time":"TIME"`)
	return spacesPattern.ReplaceAllString(s, " ")
}

func auditIDs(t *testing.T, b *consoletest.Bundle) map[string]bool {
	t.Helper()
	es, err := b.Store.AuditPage(b.Ctx, "", "", 500)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range es {
		ids[e.ID] = true
	}
	return ids
}

func newAuditEntries(t *testing.T, b *consoletest.Bundle, before map[string]bool) []fsstore.AuditEntry {
	t.Helper()
	es, err := b.Store.AuditPage(b.Ctx, "", "", 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []fsstore.AuditEntry
	for _, e := range es {
		if !before[e.ID] {
			out = append(out, e)
		}
	}
	return out
}
