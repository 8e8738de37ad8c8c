package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gcsemu "github.com/updraft-dev/updraft/emulators/gcs"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
)

// Deploying a folder through the API stores its bundle first and pins every DAG to it; the
// service fetches it (verifying the hash) and checks the files tasks name.
func TestCLIDeployOverAPIWithABundle(t *testing.T) {
	gcs, err := gcsemu.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Stop()
	t.Setenv(gcsemu.EnvVar, gcs.Host)
	b := consoletest.New(t)
	b.Grant(t, "admin@example.com", access.Admin)
	cache, err := gcsbundles.NewCache(context.Background(), func(k string) string {
		return map[string]string{"UPDRAFT_BUNDLE_BUCKET": gcsemu.Bucket, "UPDRAFT_BUNDLE_CACHE": t.TempDir()}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Bundles: cache})
	h := api.New(c, api.Options{CSRFSecret: []byte("s")})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{Email: "admin@example.com", Via: auth.ViaIDToken}))
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"dags/orders.yaml": "id: orders\nowner: a@example.com\ntasks:\n  - {id: t, type: python, with: {callable: lib.helpers:load}}\n",
		"dags/broken.yaml": "id: broken\nowner: a@example.com\ntasks:\n  - {id: t, type: python, with: {callable: lib.helpers:gone}}\n",
		"lib/helpers.py":   "def load():\n    return 1\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"UPDRAFT_ID_TOKEN": "x", "HOME": t.TempDir(), "UPDRAFT_BUNDLE_BUCKET": gcsemu.Bucket, "STORAGE_EMULATOR_HOST": gcs.Host}
	a := &App{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := a.Run(context.Background(), []string{"--api", srv.URL, "dags", "deploy", dir})
	if code != 1 || !strings.Contains(out.String(), "bundle ") || !strings.Contains(out.String(), "created   orders") {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "broken.yaml:4: tasks[0].with.callable: lib/helpers.py defines no function gone") {
		t.Errorf("the missing function is not reported with file:line:\n%s", errOut.String())
	}
	det, err := c.DAG(context.Background(), console.Caller{Email: "admin@example.com"}, "orders")
	if err != nil || len(det.Bundle) != 64 {
		t.Fatalf("the deployed version pins no stored bundle: %q %v", det.Bundle, err)
	}
	v, err := b.Engine.Spec(context.Background(), "orders", det.Version)
	if err != nil || v.Bundle == nil || v.Bundle.File != "dags/orders.yaml" {
		t.Fatalf("the DAG's file inside its bundle: %+v %v", v.Bundle, err)
	}
}
