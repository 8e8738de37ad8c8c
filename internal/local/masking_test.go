package local_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/scheduler"
)

// secretForms are the ways a secret value shows up once something encodes it.
func secretForms(v string) map[string]string {
	jsonEsc := func(html bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(v)
		return strings.TrimSuffix(strings.TrimSuffix(b.String(), "\n")[1:], `"`)
	}
	return map[string]string{
		"raw":                v,
		"JSON-escaped":       jsonEsc(true),
		"JSON (no HTML esc)": jsonEsc(false),
		"URL query":          url.QueryEscape(v),
		"URL path":           url.PathEscape(v),
		"base64":             base64.StdEncoding.EncodeToString([]byte(v)),
		"base64url":          base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

// TestSecretsAreMaskedInEveryFormAndSink runs, on the local stack with real worker processes,
// tasks that print a secret holding & < > " \ and a control character in each encoded form
// (raw, JSON-escaped, URL-encoded, base64) to stdout, stderr, their XCom and their error, and
// checks every place Updraft keeps or shows them: the log (as the CLI and the UI read it),
// the stored arguments, the error, the XCom, the task and attempt as the API returns them,
// and the Slack alert. No form of the secret may appear in any of them.
func TestSecretsAreMaskedInEveryFormAndSink(t *testing.T) {
	s := startStack(t, time.Minute)
	secret := "s3cr3t&pass<wd>\"q\\\x01end"
	forms := secretForms(secret)
	sm, err := secrets.Open(s.ctx, s.stack.Project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.Set(s.ctx, "updraft-leaky-api-key", secret); err != nil {
		t.Fatal(err)
	}
	if err := sm.Set(s.ctx, "updraft-connections-slack", `{"conn_type": "slack", "password": "`+"xox"+`b-mask-fake"}`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var lines []string
	for _, f := range forms {
		lines = append(lines, "form: "+f)
	}
	printed := filepath.Join(dir, "forms.txt")
	if err := os.WriteFile(printed, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	xcomLast := filepath.Join(dir, "xcom.txt")
	if err := os.WriteFile(xcomLast, []byte(`{"token": "`+forms["JSON-escaped"]+`", "b64": "`+forms["base64"]+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `id: leaky
owner: kim@example.com
alerts:
  slack: {channel: "#leaks", on: [failure]}
tasks:
  - id: to_xcom
    type: shell
    with:
      env: {KEY: '{{ secret "updraft-leaky-api-key" }}'}
      command: cat ` + printed + `; cat ` + xcomLast + `
  - id: to_error
    type: shell
    with:
      env: {KEY: '{{ secret "updraft-leaky-api-key" }}'}
      command: cat ` + printed + ` >&2; exit 1
  - id: reads_signing_secret
    type: shell
    retries: 2
    with:
      env: {KEY: '{{ secret "updraftsys-slack-signing-secret" }}'}
      command: echo "$KEY"
`
	d, err := dag.Parse("leaky.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	before := len(testStandIns.Slack.Messages())
	r, err := s.stack.Engine.Trigger(s.ctx, "leaky", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s %v; want failed (to_error fails)", got, s.states(t, r))
	}
	// Updraft's own secrets are refused to templates, for good: no retry can read them.
	if ti := mustTI(t, s, r, "reads_signing_secret"); ti.State != scheduler.TaskFailed || ti.TryNumber != 1 || !strings.Contains(ti.Error, "Updraft's own") {
		t.Errorf("reads_signing_secret: %s try %d %q; want a final failure refusing Updraft's own secret", ti.State, ti.TryNumber, ti.Error)
	}
	sinks := map[string]string{}
	for _, task := range []string{"to_xcom", "to_error"} {
		ti := mustTI(t, s, r, task)
		a, err := s.stack.Store.GetAttempt(s.ctx, ti.Ref())
		if err != nil {
			t.Fatal(err)
		}
		sinks[task+" stored arguments"] = a.Rec.Rendered
		sinks[task+" error"] = a.Rec.Error + "\n" + ti.Error
		out, errOut, _ := s.cli("logs", r.DagID+"/"+r.RunID, task, "--json")
		sinks[task+" log (CLI, --json)"] = out + errOut
		out, errOut, _ = s.cli("logs", r.DagID+"/"+r.RunID, task)
		sinks[task+" log and arguments (CLI)"] = out + errOut
	}
	x, err := s.stack.Engine.XCom(s.ctx, r.DagID, r.RunID, "to_xcom")
	if err != nil {
		t.Fatal(err)
	}
	sinks["XCom"] = string(x)
	out, errOut, _ := s.cli("runs", "show", r.DagID+"/"+r.RunID)
	sinks["run as shown (CLI)"] = out + errOut
	var logFiles strings.Builder
	_ = filepath.Walk(s.logDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			logFiles.Write(b)
		}
		return nil
	})
	sinks["log files on disk"] = logFiles.String()
	var slackText strings.Builder
	// The run's message comes first; the task's failure, with its error tail, follows in its
	// thread: wait for that one.
	s.until(t, "the task's failure alert", func() bool {
		for _, m := range testStandIns.Slack.Messages()[before:] {
			if b, _ := json.Marshal(m); strings.Contains(string(b), "to_error") {
				return true
			}
		}
		return false
	})
	for _, m := range testStandIns.Slack.Messages()[before:] {
		b, _ := json.Marshal(m)
		slackText.Write(b)
	}
	sinks["Slack alert"] = slackText.String()

	for sink, text := range sinks {
		for name, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s holds the secret %s (%q)", sink, name, f)
			}
		}
	}
	// The sinks did receive the output, masked: a check that fails if nothing was printed.
	for _, sink := range []string{"to_xcom log (CLI, --json)", "to_error error", "XCom", "to_xcom stored arguments"} {
		if !strings.Contains(sinks[sink], "***") {
			t.Errorf("%s shows no mask at all: %q", sink, sinks[sink])
		}
	}
	if !strings.Contains(sinks["Slack alert"], "***") {
		t.Errorf("the Slack alert shows no masked error tail: %s", sinks["Slack alert"])
	}
}
