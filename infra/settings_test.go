package infra

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The deployment's settings that have bitten before: a floating image tag, a database that
// terraform destroy silently forgets, an API enabled in two places, and docs that tell users
// to create secrets Terraform already creates.

// checkImageTag: image_tag has no default. Nothing pushes a floating tag such as latest:
// make deploy passes the tag it built, and by hand you pass the one you pushed.
func checkImageTag(cfg *tfConfig) []string {
	for _, b := range cfg.blocks {
		if b.Type != "variable" || len(b.Labels) != 1 || b.Labels[0] != "image_tag" {
			continue
		}
		if d := attr(b.Body, "default"); d != nil {
			return []string{fmt.Sprintf("variable image_tag has a default (%s): make it required, nothing pushes a default tag (make deploy passes the one it built)", exprSource(cfg, b, d))}
		}
		return nil
	}
	return []string{"no variable image_tag (deploy/build.sh pushes …:TAG and the Makefile passes -var image_tag)"}
}

// checkFirestoreDeletion: the database's deletion_policy is explicit (the provider's default,
// ABANDON, makes terraform destroy only forget it), and DELETE is guarded: its
// delete_protection_state follows var.deletion_protection.
func checkFirestoreDeletion(cfg *tfConfig) []string {
	var problems []string
	dbs := cfg.ofType("google_firestore_database")
	if len(dbs) == 0 {
		return []string{"no google_firestore_database"}
	}
	for _, b := range dbs {
		p, ok := cfg.str(attr(b.Body, "deletion_policy"))
		switch {
		case !ok:
			problems = append(problems, b.addr()+": set deletion_policy explicitly (DELETE, guarded by delete_protection_state, or ABANDON), and say what terraform destroy does in docs/deploy.md")
		case p == "DELETE":
			if rootRef(attr(b.Body, "delete_protection_state")) != "var.deletion_protection" {
				problems = append(problems, b.addr()+": deletion_policy DELETE needs delete_protection_state to follow var.deletion_protection, or terraform destroy deletes the data unasked")
			}
		case p != "ABANDON":
			problems = append(problems, fmt.Sprintf("%s: deletion_policy %q is neither DELETE nor ABANDON", b.addr(), p))
		}
	}
	return problems
}

// apiResources maps the APIs the Makefile enables outside Terraform (make images) to the
// prefix of the Terraform resource types that need them.
var apiResources = map[string]string{
	"artifactregistry.googleapis.com": "google_artifact_registry_",
	"cloudbuild.googleapis.com":       "google_cloudbuild_",
}

// checkAPIs: an API is enabled in one place. apis.tf enables what Terraform's resources need;
// what only make images needs (Cloud Build) is enabled by the Makefile, not also here.
func checkAPIs(cfg *tfConfig, makefile string) []string {
	var problems []string
	listed := map[string]bool{}
	if e, ok := cfg.locals["apis"]; ok {
		apis, ok := cfg.strings(e)
		if !ok {
			return []string{"local.apis is not a list of literal strings"}
		}
		for _, a := range apis {
			if listed[a] {
				problems = append(problems, "apis.tf lists "+a+" twice")
			}
			listed[a] = true
		}
	} else {
		return []string{"no local.apis (apis.tf)"}
	}
	enabled := map[string]bool{}
	for _, m := range regexp.MustCompile(`gcloud services enable ([a-z0-9. ]+)`).FindAllStringSubmatch(makefile, -1) {
		for _, a := range strings.Fields(m[1]) {
			if strings.HasSuffix(a, ".googleapis.com") {
				enabled[a] = true
			}
		}
	}
	for _, a := range sortedKeys(enabled) {
		prefix, ok := apiResources[a]
		if !ok {
			problems = append(problems, fmt.Sprintf("the Makefile enables %s: add it to apiResources with the Terraform resources that need it", a))
			continue
		}
		needed := false
		for _, b := range cfg.blocks {
			if b.Type == "resource" && strings.HasPrefix(b.Labels[0], prefix) {
				needed = true
			}
		}
		switch {
		case needed && !listed[a]:
			problems = append(problems, fmt.Sprintf("Terraform creates %s* resources: enable %s in apis.tf", prefix, a))
		case !needed && listed[a]:
			problems = append(problems, fmt.Sprintf("apis.tf enables %s, which no Terraform resource needs and the Makefile's make images already enables: keep it in one place (the Makefile)", a))
		}
	}
	return problems
}

// secretCommand matches the gcloud secrets commands in the docs (line continuations joined).
var secretCommand = regexp.MustCompile(`gcloud secrets (create|versions add|add-iam-policy-binding)\s+("[^"]*"|\S+)`)

// checkDocSecrets: the docs never tell users to create a secret Terraform creates, nor to
// grant access to one (iam.tf does), and every secret Terraform creates without a value has
// its `gcloud secrets versions add` in the docs, by the id Terraform gives it.
func checkDocSecrets(cfg *tfConfig, docs map[string]string) []string {
	var problems []string
	ids := map[string]bool{}
	for _, b := range cfg.ofType("google_secret_manager_secret") {
		if id, ok := cfg.str(attr(b.Body, "secret_id")); ok {
			ids[id] = true
		}
	}
	added := map[string]bool{}
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, doc := range names {
		text := strings.ReplaceAll(docs[doc], "\\\n", " ")
		for _, m := range secretCommand.FindAllStringSubmatch(text, -1) {
			verb, id := m[1], strings.Trim(m[2], `"`)
			switch {
			case verb == "create" && ids[id]:
				problems = append(problems, fmt.Sprintf("%s: `gcloud secrets create %s`, but Terraform creates it (secrets.tf): add a version instead", doc, id))
			case verb == "add-iam-policy-binding":
				problems = append(problems, fmt.Sprintf("%s: `gcloud secrets add-iam-policy-binding %s`: Terraform grants the secrets' access (iam.tf, docs/deploy-iam.md)", doc, id))
			case verb == "versions add" && strings.HasPrefix(id, "updraft") && !ids[id]:
				problems = append(problems, fmt.Sprintf("%s: `gcloud secrets versions add %s`, a secret Terraform does not create (secrets.tf has %v)", doc, id, sortedKeys(ids)))
			case verb == "versions add":
				added[id] = true
			}
		}
	}
	for _, id := range sortedKeys(ids) {
		if !added[id] {
			problems = append(problems, fmt.Sprintf("Terraform creates the secret %s without a value, but no doc says `gcloud secrets versions add %s`", id, id))
		}
	}
	return problems
}

func TestDeploymentSettings(t *testing.T) {
	cfg := loadTF(t, ".")
	for _, p := range checkImageTag(cfg) {
		t.Error(p)
	}
	for _, p := range checkFirestoreDeletion(cfg) {
		t.Error(p)
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkAPIs(cfg, string(mk)) {
		t.Error(p)
	}
	docs := map[string]string{}
	for _, n := range []string{"../docs/slack-app.md", "../docs/deploy.md"} {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		docs[strings.TrimPrefix(n, "../")] = string(b)
	}
	for _, p := range checkDocSecrets(cfg, docs) {
		t.Error(p)
	}
}
