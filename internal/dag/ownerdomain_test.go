package dag

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwnerDomainFromRepoConfig: with updraft.yaml's owner_domain, an owner of another domain
// fails validation at its line; the config is found from a subfolder; a bad config is
// reported with its file and line.
func TestOwnerDomainFromRepoConfig(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	sub := filepath.Join(repo, "dags", "team")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, RepoConfigFile), []byte("owner_domain: socar.kr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, probs := LoadRepoConfig(sub)
	if len(probs) > 0 || len(cfg.OwnerDomains) != 1 || cfg.OwnerDomains[0] != "socar.kr" {
		t.Fatalf("config from a subfolder: %+v %v", cfg, probs)
	}
	opts := Options{OwnerDomains: cfg.OwnerDomains}
	src := "id: x\nowner: someone@gmail.com\ntasks:\n  - {id: a, type: noop}\n"
	_, err := Parse("x.yaml", []byte(src), opts)
	if err == nil || !strings.Contains(err.Error(), `x.yaml:2: owner: owner "someone@gmail.com" is not an address of socar.kr`) {
		t.Fatalf("an owner outside the domain: %v", err)
	}
	if _, err := Parse("x.yaml", []byte(strings.Replace(src, "gmail.com", "SOCAR.kr", 1)), opts); err != nil {
		t.Fatalf("an owner of the domain: %v", err)
	}
	if _, err := Parse("x.yaml", []byte(src), Options{}); err != nil {
		t.Fatalf("without owner_domain any domain passes: %v", err)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, RepoConfigFile), []byte("owner_domain: \"@socar\"\nowners: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, probs = LoadRepoConfig(bad)
	if got := probs.Error(); !strings.Contains(got, "updraft.yaml:1: owner_domain:") || !strings.Contains(got, `updraft.yaml:2: owners: unknown setting "owners"`) {
		t.Fatalf("a bad updraft.yaml:\n%s", got)
	}
}
