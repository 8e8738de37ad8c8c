package infra

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// oidcCaller is one caller that sends a Google OIDC token to a Cloud Run service: a push
// subscription (push_config) or a Cloud Scheduler job (http_target).
type oidcCaller struct {
	block    *tfBlock
	service  string               // the google_cloud_run_v2_service it calls, by resource name
	sa       string               // the google_service_account whose token it sends
	audience hclsyntax.Expression // oidc_token.audience, nil when unset
}

// oidcCallers finds every push subscription and Cloud Scheduler job with an oidc_token.
func oidcCallers(cfg *tfConfig) []oidcCaller {
	var out []oidcCaller
	add := func(b *tfBlock, target *hclsyntax.Block, urlAttr string) {
		if target == nil {
			return
		}
		oidc := subBlock(target.Body, "oidc_token")
		if oidc == nil {
			return
		}
		svc, _ := refName(attr(target.Body, urlAttr), "google_cloud_run_v2_service")
		sa, _ := refName(attr(oidc.Body, "service_account_email"), "google_service_account")
		out = append(out, oidcCaller{block: b, service: svc, sa: sa, audience: attr(oidc.Body, "audience")})
	}
	for _, b := range cfg.ofType("google_pubsub_subscription") {
		add(b, subBlock(b.Body, "push_config"), "push_endpoint")
	}
	for _, b := range cfg.ofType("google_cloud_scheduler_job") {
		add(b, subBlock(b.Body, "http_target"), "uri")
	}
	return out
}

// checkOIDC: a service that checks OIDC tokens itself (auth.InvokersFromEnv) accepts exactly
// what its callers send. UPDRAFT_OIDC_AUDIENCE is the same expression as each caller's
// oidc_token.audience (the audience must match byte for byte; left unset, Cloud Scheduler and
// Pub/Sub use the full URL, path included), and UPDRAFT_OIDC_INVOKERS names exactly the
// service accounts whose tokens its callers send, as google_service_account.X.email. Every
// OIDC caller's service checks the token.
func checkOIDC(cfg *tfConfig) []string {
	var problems []string
	callers := oidcCallers(cfg)
	byService := map[string][]oidcCaller{}
	for _, c := range callers {
		if c.service == "" {
			problems = append(problems, c.block.addr()+": sends an OIDC token to something that is not a google_cloud_run_v2_service here")
			continue
		}
		if c.sa == "" {
			problems = append(problems, c.block.addr()+": its oidc_token's service_account_email is not a google_service_account here")
		}
		byService[c.service] = append(byService[c.service], c)
	}
	checks := map[string]bool{}
	for _, b := range cfg.ofType("google_cloud_run_v2_service") {
		name := b.Labels[1]
		aud, inv := envExpr(cfg, b, "UPDRAFT_OIDC_AUDIENCE"), envExpr(cfg, b, "UPDRAFT_OIDC_INVOKERS")
		if aud == nil && inv == nil {
			continue
		}
		checks[name] = true
		if aud == nil || inv == nil {
			problems = append(problems, b.addr()+": sets only one of UPDRAFT_OIDC_AUDIENCE and UPDRAFT_OIDC_INVOKERS (auth.InvokersFromEnv needs both)")
			continue
		}
		cs := byService[name]
		if len(cs) == 0 {
			problems = append(problems, b.addr()+": checks OIDC tokens, but no push subscription or Cloud Scheduler job calls it with one")
			continue
		}
		want := exprSource(cfg, b, aud)
		allowed, literal := invokerRefs(inv)
		if literal {
			problems = append(problems, fmt.Sprintf("%s: UPDRAFT_OIDC_INVOKERS = %s: name the invoker as google_service_account.X.email, so it can't drift from the caller's account", b.addr(), exprSource(cfg, b, inv)))
		}
		sending := map[string]bool{}
		for _, c := range cs {
			sending[c.sa] = true
			if c.audience == nil {
				problems = append(problems, fmt.Sprintf("%s: its oidc_token has no audience (the full URL would be used); %s checks UPDRAFT_OIDC_AUDIENCE = %s", c.block.addr(), b.addr(), want))
			} else if got := exprSource(cfg, c.block, c.audience); !sameValue(cfg, got, c.audience, want, aud) {
				problems = append(problems, fmt.Sprintf("%s: its OIDC token's audience is %s, but %s checks UPDRAFT_OIDC_AUDIENCE = %s: every request would be refused 401", c.block.addr(), got, b.addr(), want))
			}
			if c.sa != "" && !allowed[c.sa] {
				problems = append(problems, fmt.Sprintf("%s: sends google_service_account.%s's token, which %s's UPDRAFT_OIDC_INVOKERS does not name: every request would be refused 403", c.block.addr(), c.sa, b.addr()))
			}
		}
		for _, sa := range sortedKeys(allowed) {
			if !sending[sa] {
				problems = append(problems, fmt.Sprintf("%s: UPDRAFT_OIDC_INVOKERS names google_service_account.%s, which calls it with no token: drop it", b.addr(), sa))
			}
		}
	}
	for _, svc := range sortedKeys(byService) {
		if !checks[svc] {
			for _, c := range byService[svc] {
				problems = append(problems, fmt.Sprintf("%s: sends an OIDC token to google_cloud_run_v2_service.%s, which does not check it (no UPDRAFT_OIDC_AUDIENCE/UPDRAFT_OIDC_INVOKERS)", c.block.addr(), svc))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// invokerRefs returns the service accounts an UPDRAFT_OIDC_INVOKERS expression names as
// google_service_account.X.email, and whether it also holds an email typed in.
func invokerRefs(e hclsyntax.Expression) (map[string]bool, bool) {
	out := map[string]bool{}
	for _, tr := range e.Variables() {
		if tr.RootName() != "google_service_account" || len(tr) != 3 {
			continue
		}
		n, ok1 := tr[1].(hcl.TraverseAttr)
		a, ok2 := tr[2].(hcl.TraverseAttr)
		if ok1 && ok2 && a.Name == "email" {
			out[n.Name] = true
		}
	}
	literal := false
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if l, ok := n.(*hclsyntax.LiteralValueExpr); ok && l.Val.Type() == cty.String && !l.Val.IsNull() && strings.Contains(l.Val.AsString(), "@") {
			literal = true
		}
		return nil
	})
	return out, literal
}

// sameValue compares two expressions: by value when both evaluate (literals, locals made of
// literals), else by source text.
func sameValue(cfg *tfConfig, srcA string, a hclsyntax.Expression, srcB string, b hclsyntax.Expression) bool {
	va, okA := cfg.str(a)
	vb, okB := cfg.str(b)
	if okA && okB {
		return va == vb
	}
	return strings.Join(strings.Fields(srcA), " ") == strings.Join(strings.Fields(srcB), " ")
}

func TestOIDCInvokersMatchCallers(t *testing.T) {
	cfg := loadTF(t, ".")
	if len(oidcCallers(cfg)) == 0 {
		t.Fatal("found no push subscription or Cloud Scheduler job with an oidc_token")
	}
	for _, p := range checkOIDC(cfg) {
		t.Error(p)
	}
}
