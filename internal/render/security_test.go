package render

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShq runs each quoted value through /bin/sh: it comes out as one word, byte for byte,
// and nothing in it runs.
func TestShq(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	for _, v := range []string{
		"plain", "", "it's", `"double"`, "$(touch " + marker + ")", "`touch " + marker + "`", "; touch " + marker,
		"a\ntouch " + marker, "'; touch " + marker + "; '", `\'\\`, "*", "$HOME", "-n", "tab\there", "ünï",
	} {
		q, err := Shq(v)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("/bin/sh", "-c", "printf '%s|' "+q).Output()
		if err != nil {
			t.Fatalf("sh -c printf %s: %v", q, err)
		}
		if string(out) != v+"|" {
			t.Errorf("Shq(%q) = %s; the shell read %q", v, q, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a quoted value ran")
	}
	if _, err := Shq("a\x00b"); err == nil {
		t.Error("Shq accepted a NUL byte")
	}
	if q, _ := Shq(Number(174096000)); q != "'174096000'" {
		t.Errorf("Shq(Number) = %s", q)
	}
}

// TestBqIdent accepts table paths and nothing that could carry SQL.
func TestBqIdent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"updraft_examples.jobs":                          "`updraft_examples.jobs`",
		"my-project.sales.orders":                        "`my-project.sales.orders`",
		"`my-project.sales.orders`":                      "`my-project.sales.orders`",
		"region-asia-northeast3.INFORMATION_SCHEMA.JOBS": "`region-asia-northeast3.INFORMATION_SCHEMA.JOBS`",
		"`region-us`.INFORMATION_SCHEMA.JOBS":            "`region-us.INFORMATION_SCHEMA.JOBS`",
		"p.region-us.INFORMATION_SCHEMA.JOBS":            "`p.region-us.INFORMATION_SCHEMA.JOBS`",
		"logs.events_*":                                  "`logs.events_*`",
		"orders":                                         "`orders`",
	} {
		if got, err := BqIdent(in); err != nil || got != want {
			t.Errorf("BqIdent(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "a.b.c.d.e", "jobs; DROP TABLE x", "jobs` WHERE 1=1; --", "a b", "jobs/*", "x'y", `x"y`,
		"a..b", ".a", "a.", "a*.b", "a\nb", "a.b)", "a,b",
	} {
		if got, err := BqIdent(bad); err == nil {
			t.Errorf("BqIdent(%q) = %q; want an error", bad, got)
		} else if !strings.Contains(err.Error(), "table path") {
			t.Errorf("BqIdent(%q): %v; want a hint", bad, err)
		}
	}
}

// TestSecretRefusesUpdraftsOwn: a template may not read the Slack signing secret or the CSRF
// key, under their names or the old ones; the lookup is never called for them.
func TestSecretRefusesUpdraftsOwn(t *testing.T) {
	t.Parallel()
	called := 0
	funcs := Funcs(Lookups{Secret: func(name string) (string, error) { called++; return "v", nil }}, time.UTC)
	for _, name := range []string{"updraftsys-slack-signing-secret", "updraftsys-csrf-secret", "updraftsys-anything",
		"updraft-slack-signing-secret", "updraft-csrf-secret"} {
		_, err := Render(map[string]any{"x": `{{ secret "` + name + `" }}`}, map[string]any{}, funcs)
		if err == nil || !strings.Contains(err.Error(), "Updraft's own") {
			t.Errorf("secret %q: %v; want a refusal", name, err)
		}
	}
	if called != 0 {
		t.Fatalf("the lookup was called %d times for reserved names", called)
	}
	if out, err := Render(map[string]any{"x": `{{ secret "updraft-api-key" }}`}, map[string]any{}, funcs); err != nil || out.(map[string]any)["x"] != "v" {
		t.Fatalf("an ordinary secret: %v %v", out, err)
	}
}

// TestMaskForms masks a secret in every encoded form, in text and in values before they are
// encoded, and leaves other text alone.
func TestMaskForms(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t&pass<>\"\\\x01z"
	jsonText, _ := json.Marshal(map[string]any{"token": secret})
	forms := []string{
		secret, string(jsonText), url.QueryEscape(secret), url.PathEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)),
	}
	for _, f := range forms {
		got := Mask("before "+f+" after", []string{secret})
		if !strings.Contains(got, "***") || strings.Contains(got, "s3cr3t") || !strings.HasPrefix(got, "before ") {
			t.Errorf("Mask(%q) = %q", f, got)
		}
	}
	v := MaskValue(map[string]any{"env": map[string]any{"K": secret, "other": "fine"}, "list": []any{"x" + secret}}, []string{secret})
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "s3cr3t") || !strings.Contains(string(b), `"other":"fine"`) {
		t.Errorf("MaskValue: %s", b)
	}
	if got := string(MaskJSON(jsonText, []string{secret})); got != `{"token":"***"}` {
		t.Errorf("MaskJSON(%s) = %s", jsonText, got)
	}
	if got := Mask("pw is abc", []string{"abc"}); got != "pw is abc" {
		t.Errorf("a 3-character secret masked: %q", got)
	}
}
