package infra

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// grant is one IAM member binding: who, which role, on what.
type grant struct{ Principal, Role, Scope string }

func (g grant) String() string { return fmt.Sprintf("%s | %s | %s", g.Principal, g.Role, g.Scope) }

// iamScopes names, per IAM member resource type, the scope kind and the attribute and
// resource type its target is read from. A type not listed is an error, so a new kind of
// grant can't slip past the matrix.
var iamScopes = map[string]struct{ kind, attr, ref string }{
	"google_project_iam_member":                   {"project", "", ""},
	"google_pubsub_topic_iam_member":              {"topic", "topic", "google_pubsub_topic"},
	"google_pubsub_subscription_iam_member":       {"subscription", "subscription", "google_pubsub_subscription"},
	"google_cloud_run_v2_service_iam_member":      {"service", "name", "google_cloud_run_v2_service"},
	"google_cloud_run_v2_job_iam_member":          {"job", "name", "google_cloud_run_v2_job"},
	"google_service_account_iam_member":           {"service account", "service_account_id", "google_service_account"},
	"google_secret_manager_secret_iam_member":     {"secret", "secret_id", "google_secret_manager_secret"},
	"google_iap_web_cloud_run_service_iam_member": {"IAP on service", "cloud_run_service_name", "google_cloud_run_v2_service"},
	"google_storage_bucket_iam_member":            {"bucket", "bucket", "google_storage_bucket"},
}

// tfGrants reads every IAM grant in the Terraform.
func tfGrants(cfg *tfConfig) ([]grant, []string) {
	var out []grant
	var problems []string
	for _, b := range cfg.blocks {
		if b.Type != "resource" {
			continue
		}
		typ := b.Labels[0]
		if !strings.Contains(typ, "_iam_") || typ == "google_project_iam_custom_role" {
			continue
		}
		sc, ok := iamScopes[typ]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %s is not a kind of grant the role check knows (bindings and policies replace others' grants: use *_iam_member)", b.addr(), typ))
			continue
		}
		g := grant{Principal: principal(cfg, b), Role: role(cfg, attr(b.Body, "role")), Scope: sc.kind}
		if sc.attr != "" {
			target := attr(b.Body, sc.attr)
			if refsEach(target) {
				target = attr(b.Body, "for_each")
			}
			name, ok := refName(target, sc.ref)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s does not refer to a %s in this configuration", b.addr(), sc.attr, sc.ref))
			}
			g.Scope += " " + name
		}
		if c := subBlock(b.Body, "condition"); c != nil {
			title, _ := cfg.str(attr(c.Body, "title"))
			g.Scope += " if " + title
		}
		if g.Principal == "" || g.Role == "" {
			problems = append(problems, fmt.Sprintf("%s: can't read its member or role", b.addr()))
			continue
		}
		out = append(out, g)
	}
	return out, problems
}

// principal names a grant's member: a service account by its resource name, a service
// agent by its local, a variable's members by the variable, a literal as it is.
func principal(cfg *tfConfig, b *tfBlock) string {
	m := attr(b.Body, "member")
	if s, ok := cfg.str(m); ok && !strings.HasPrefix(rootRef(m), "local.") {
		return s
	}
	if n, ok := refName(m, "google_service_account"); ok {
		return n
	}
	if refsEach(m) {
		m = attr(b.Body, "for_each")
	}
	if r := rootRef(m); r != "" {
		_, name, _ := strings.Cut(r, ".")
		return name
	}
	return ""
}

func role(cfg *tfConfig, e hclsyntax.Expression) string {
	if s, ok := cfg.str(e); ok {
		return s
	}
	if n, ok := refName(e, "google_project_iam_custom_role"); ok {
		return "custom " + n
	}
	return ""
}

// docGrants reads the role matrix: the rows of the markdown table whose first cell is a
// `principal`.
func docGrants(md []byte) []grant {
	var out []grant
	sc := bufio.NewScanner(bytes.NewReader(md))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		clean := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
		out = append(out, grant{Principal: clean(cells[0]), Role: clean(cells[1]), Scope: clean(cells[2])})
	}
	return out
}

// checkRoles compares the documented matrix with the Terraform's grants, exactly.
func checkRoles(doc []grant, cfg *tfConfig) []string {
	tf, problems := tfGrants(cfg)
	count := func(gs []grant) map[grant]int {
		m := map[grant]int{}
		for _, g := range gs {
			m[g]++
		}
		return m
	}
	d, t := count(doc), count(tf)
	var keys []grant
	for g := range d {
		keys = append(keys, g)
	}
	for g := range t {
		if _, ok := d[g]; !ok {
			keys = append(keys, g)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, g := range keys {
		switch {
		case d[g] > 0 && t[g] == 0:
			problems = append(problems, fmt.Sprintf("docs/deploy-iam.md grants %s, Terraform does not", g))
		case t[g] > 0 && d[g] == 0:
			problems = append(problems, fmt.Sprintf("Terraform grants %s, docs/deploy-iam.md does not: document why", g))
		case d[g] > 1:
			problems = append(problems, fmt.Sprintf("docs/deploy-iam.md lists %s twice", g))
		case t[g] > 1:
			problems = append(problems, fmt.Sprintf("Terraform grants %s twice", g))
		}
	}
	// Every service account holds something or is an invoker identity (the email of the
	// OIDC tokens Cloud Scheduler or Pub/Sub push send), and every documented one exists.
	has := map[string]bool{}
	for _, g := range tf {
		has[g.Principal] = true
	}
	for sa := range oidcIdentities(cfg) {
		has[sa] = true
	}
	for _, b := range cfg.ofType("google_service_account") {
		if !has[b.Labels[1]] {
			problems = append(problems, fmt.Sprintf("service account %s holds no role and signs no OIDC token: remove it or grant what it needs", b.Labels[1]))
		}
	}
	return problems
}

// oidcIdentities are the service accounts whose OIDC tokens a push subscription or a Cloud
// Scheduler job sends (by resource name).
func oidcIdentities(cfg *tfConfig) map[string]bool {
	out := map[string]bool{}
	for _, c := range oidcCallers(cfg) {
		if c.sa != "" {
			out[c.sa] = true
		}
	}
	return out
}

func TestRolesMatchMatrix(t *testing.T) {
	md, err := os.ReadFile("../docs/deploy-iam.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := docGrants(md)
	if len(doc) < 10 {
		t.Fatalf("docs/deploy-iam.md: found %d rows in the role matrix", len(doc))
	}
	for _, p := range checkRoles(doc, loadTF(t, ".")) {
		t.Error(p)
	}
}

// publicExceptions are the grants to allUsers/allAuthenticatedUsers allowed, and why: none.
// Organisations with domain-restricted sharing (the default for those created since May
// 2024) refuse them, and every public endpoint checks its caller itself (signatureServices).
var publicExceptions = map[grant]string{}

// signatureServices are the services that may turn Cloud Run's invoker check off without
// OIDC because their handler verifies the caller another way, and how.
var signatureServices = map[string]string{
	"slack_actions": "Slack can't send a Google token; functions.SlackActions refuses any request whose Slack signature and timestamp do not verify",
}

// oidcIngress is the only ingress a service with Cloud Run's invoker check off may have.
const oidcIngress = "INGRESS_TRAFFIC_INTERNAL_ONLY"

// checkPublic finds anything public: allUsers or allAuthenticatedUsers anywhere but the
// allowed grants, and Cloud Run services with the invoker check turned off that do not make
// up for it. invoker_iam_disabled is allowed only where the app checks the caller's OIDC
// token itself (UPDRAFT_OIDC_AUDIENCE and UPDRAFT_OIDC_INVOKERS set, not empty) and the
// ingress is internal only: Cloud Run's own check would strip the token's signature
// (docs/auth.md), so these two layers replace it.
func checkPublic(cfg *tfConfig) []string {
	var problems []string
	allowed := map[string]bool{}
	for _, b := range cfg.blocks {
		if b.Type == "resource" && strings.Contains(b.Labels[0], "_iam_") {
			if sc, ok := iamScopes[b.Labels[0]]; ok {
				g := grant{Principal: principal(cfg, b), Role: role(cfg, attr(b.Body, "role")), Scope: sc.kind}
				if n, ok := refName(attr(b.Body, sc.attr), sc.ref); ok {
					g.Scope += " " + n
				}
				if _, ok := publicExceptions[g]; ok {
					allowed[b.addr()] = true
				}
			}
		}
	}
	for _, b := range cfg.blocks {
		for _, who := range []string{"allUsers", "allAuthenticatedUsers"} {
			if bytes.Contains(b.src, []byte(who)) && !allowed[b.addr()] {
				problems = append(problems, fmt.Sprintf("%s (%s) mentions %s: nothing may be public (a caller without a Google token is checked by the handler, signatureServices)", b.addr(), b.file, who))
			}
		}
		if b.Type != "resource" || b.Labels[0] != "google_cloud_run_v2_service" {
			continue
		}
		e := attr(b.Body, "invoker_iam_disabled")
		if e == nil {
			continue
		}
		if v, ok := cfg.value(e); ok && v.Type() == cty.Bool && v.False() {
			continue
		}
		if _, ok := signatureServices[b.Labels[1]]; ok {
			continue
		}
		// Anything but a literal false counts as disabled.
		var missing []string
		for _, n := range []string{"UPDRAFT_OIDC_AUDIENCE", "UPDRAFT_OIDC_INVOKERS"} {
			if !envSet(cfg, b, n) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("%s: invoker_iam_disabled, but it does not set %s: the service would be public (only a service that checks OIDC tokens itself may turn Cloud Run's check off)",
				b.addr(), strings.Join(missing, " and ")))
		}
		if ing, _ := cfg.str(attr(b.Body, "ingress")); ing != oidcIngress {
			problems = append(problems, fmt.Sprintf("%s: invoker_iam_disabled with ingress %q: it must be %s (the network layer in place of Cloud Run's invoker check)",
				b.addr(), ing, oidcIngress))
		}
	}
	return problems
}

// envExpr is the value expression of env var name on a resource, or nil.
func envExpr(cfg *tfConfig, b *tfBlock, name string) hclsyntax.Expression {
	var out hclsyntax.Expression
	var find func(body *hclsyntax.Body)
	find = func(body *hclsyntax.Body) {
		for _, sb := range body.Blocks {
			if sb.Type == "env" {
				if n, _ := cfg.str(attr(sb.Body, "name")); n == name {
					out = attr(sb.Body, "value")
				}
				continue
			}
			find(sb.Body)
		}
	}
	find(b.Body)
	return out
}

// envSet reports whether a resource sets env var name to something that is not a literal
// empty string (a reference counts: its value is known only to Terraform).
func envSet(cfg *tfConfig, b *tfBlock, name string) bool {
	e := envExpr(cfg, b, name)
	if e == nil {
		return false
	}
	if v, ok := cfg.value(e); ok {
		return v.Type() == cty.String && !v.IsNull() && strings.TrimSpace(v.AsString()) != ""
	}
	return true
}

func TestNothingPublicButSlackActions(t *testing.T) {
	for _, p := range checkPublic(loadTF(t, ".")) {
		t.Error(p)
	}
}
