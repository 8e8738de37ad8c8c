package infra

import (
	"regexp"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
)

// TestTaskAccountsCantReadUpdraftsSecrets checks the secret scoping of docs/security.md:
// every project-wide Secret Manager grant is conditioned on a name prefix, no such prefix
// covers a secret of Updraft's own (the Slack signing secret, the CSRF key: named with
// dag.ReservedSecretPrefix), and Updraft's own are each granted, secret by secret, to the one
// service that needs them and to no account that runs tasks.
func TestTaskAccountsCantReadUpdraftsSecrets(t *testing.T) {
	cfg := loadTF(t, ".")
	prefixOf := regexp.MustCompile(`/secrets/([A-Za-z0-9_-]*)"`)
	prefixes := map[string]string{} // local name → secret name prefix
	for name, e := range cfg.locals {
		src := string(e.Range().SliceBytes(cfg.files[e.Range().Filename]))
		if m := prefixOf.FindStringSubmatch(src); m != nil {
			prefixes[name] = m[1]
		}
	}
	if len(prefixes) == 0 {
		t.Fatal("no secret name prefix found in the locals: is the scanner still reading iam.tf?")
	}
	var granted []string
	for _, b := range cfg.ofType("google_project_iam_member") {
		if !strings.Contains(string(b.src), "roles/secretmanager.secretAccessor") {
			continue
		}
		cond := subBlock(b.Body, "condition")
		if cond == nil {
			t.Errorf("%s: Secret Manager access on the whole project, without a name condition: it reaches Updraft's own secrets", b.addr())
			continue
		}
		src := string(cond.Range().SliceBytes(cfg.files[b.file]))
		found := false
		for local, p := range prefixes {
			if strings.Contains(src, "local."+local) {
				granted, found = append(granted, b.addr()+" → "+p), true
				for _, s := range cfg.ofType("google_secret_manager_secret") {
					id, _ := cfg.str(attr(s.Body, "secret_id"))
					if dag.ReservedSecret(id) && strings.HasPrefix(id, p) {
						t.Errorf("%s grants the prefix %q, which covers Updraft's own secret %s", b.addr(), p, id)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: its condition names no known secret prefix: %s", b.addr(), src)
		}
	}
	t.Logf("prefix grants: %v", granted)
	owners := map[string]bool{}
	for _, s := range cfg.ofType("google_secret_manager_secret") {
		id, _ := cfg.str(attr(s.Body, "secret_id"))
		if strings.HasPrefix(id, "updraft-slack") || strings.HasPrefix(id, "updraft-csrf") {
			t.Errorf("secret %s is Updraft's own but named under the tasks' prefix: name it %s…", id, dag.ReservedSecretPrefix)
		}
		if !dag.ReservedSecret(id) {
			continue
		}
		for _, g := range cfg.ofType("google_secret_manager_secret_iam_member") {
			if strings.Contains(string(g.src), "google_secret_manager_secret."+s.Labels[1]+".") {
				member := string(attr(g.Body, "member").Range().SliceBytes(cfg.files[g.file]))
				owners[id+" ← "+member] = true
				for _, taskAccount := range []string{"worker", "dispatch", "scheduler"} {
					if strings.Contains(member, "google_service_account."+taskAccount+".") {
						t.Errorf("%s: the %s account, which runs tasks or renders their templates, may read Updraft's own secret %s", g.addr(), taskAccount, id)
					}
				}
			}
		}
	}
	if len(owners) < 2 {
		t.Errorf("grants on Updraft's own secrets: %v; want the UI's on the CSRF key and Slack actions' on the signing secret", owners)
	}
}
