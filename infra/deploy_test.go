package infra

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Checks of what stops a first `terraform apply` on a fresh project, which `terraform
// validate` can't see offline: the provider floor, ordering against API enablement and new
// metrics, the name prefix's bounds, where permissions can be granted, and the roles the
// deployer needs.

// attrMinProvider is the google provider version from which an attribute of a resource type
// is accepted (GA). Sources: the provider's CHANGELOG and the resource's page.
var attrMinProvider = map[[2]string]string{
	// iap_enabled went GA in 7.21 (google-beta before): CHANGELOG-7.md, 7.21.0.
	{"google_cloud_run_v2_service", "iap_enabled"}: "7.21",
}

// providerSources are the provider sources required_providers must declare for the
// resource types (by prefix) used.
var providerSources = map[string]string{
	"google_": "hashicorp/google",
	"time_":   "hashicorp/time",
}

// version parses "MAJOR.MINOR[.PATCH]".
func version(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 1 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// requiredProviders reads terraform { required_providers { NAME = { source, version } } }.
func requiredProviders(cfg *tfConfig) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, b := range cfg.blocks {
		if b.Type != "terraform" {
			continue
		}
		rp := subBlock(b.Body, "required_providers")
		if rp == nil {
			continue
		}
		for name, a := range rp.Body.Attributes {
			obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
			if !ok {
				continue
			}
			m := map[string]string{}
			for _, it := range obj.Items {
				k, ok := cfg.str(it.KeyExpr)
				if !ok {
					if kw, ok2 := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok2 {
						k = hcl.ExprAsKeyword(kw.Wrapped)
					}
				}
				v, _ := cfg.str(it.ValueExpr)
				m[k] = v
			}
			out[name] = m
		}
	}
	return out
}

// checkProviderFloor finds attributes the declared provider floor does not accept, and
// resource types whose provider required_providers does not declare.
func checkProviderFloor(cfg *tfConfig) []string {
	var problems []string
	rp := requiredProviders(cfg)
	bySource := map[string]map[string]string{}
	for _, m := range rp {
		bySource[m["source"]] = m
	}
	used := map[string]bool{}
	for _, b := range cfg.blocks {
		if b.Type != "resource" {
			continue
		}
		for prefix, src := range providerSources {
			if strings.HasPrefix(b.Labels[0], prefix) {
				used[src] = true
			}
		}
	}
	for src := range used {
		if bySource[src] == nil {
			problems = append(problems, fmt.Sprintf("resources of %s are used, but required_providers does not declare it", src))
		}
	}
	g := bySource["hashicorp/google"]
	floorText, _ := strings.CutPrefix(strings.TrimSpace(g["version"]), ">=")
	floor, ok := version(floorText)
	if !ok {
		return append(problems, fmt.Sprintf("the google provider's version constraint %q is not \">= X.Y\": can't check it against the attributes used", g["version"]))
	}
	keys := make([][2]string, 0, len(attrMinProvider))
	for k := range attrMinProvider {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		min, _ := version(attrMinProvider[k])
		for _, b := range cfg.ofType(k[0]) {
			if attr(b.Body, k[1]) != nil && versionLess(floor, min) {
				problems = append(problems, fmt.Sprintf("%s (%s) sets %s, accepted from google provider %s, but required_providers allows %s",
					b.addr(), b.file, k[1], attrMinProvider[k], g["version"]))
			}
		}
	}
	return problems
}

// refs are the resources a block refers to (by "TYPE.NAME"), through attributes, nested
// blocks, depends_on and locals.
func refs(cfg *tfConfig, body *hclsyntax.Body) map[string]bool {
	out := map[string]bool{}
	seenLocal := map[string]bool{}
	var expr func(e hclsyntax.Expression)
	expr = func(e hclsyntax.Expression) {
		for _, tr := range e.Variables() {
			if len(tr) < 2 {
				continue
			}
			a, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				continue
			}
			root := tr.RootName()
			if root == "local" {
				if le, ok := cfg.locals[a.Name]; ok && !seenLocal[a.Name] {
					seenLocal[a.Name] = true
					expr(le)
				}
				continue
			}
			if _, ok := cfg.resources[root]; ok {
				out[root+"."+a.Name] = true
			}
		}
	}
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			expr(a.Expr)
		}
		for _, sb := range b.Blocks {
			walk(sb.Body)
		}
	}
	walk(body)
	return out
}

// apiEnablement is the resource that turns the project's APIs on.
const apiEnablement = "google_project_service.apis"

// checkAPIDependencies finds resources that could be created before the APIs they need
// are enabled: every resource must depend on google_project_service.apis, directly or
// through what it refers to. Without it a plain `terraform apply` on a fresh project races
// the enablement (service accounts, custom roles, service agents' grants).
func checkAPIDependencies(cfg *tfConfig) []string {
	deps := map[string]map[string]bool{}
	for _, b := range cfg.blocks {
		if b.Type == "resource" {
			deps[b.addr()] = refs(cfg, b.Body)
		}
	}
	memo := map[string]bool{}
	var reaches func(addr string, seen map[string]bool) bool
	reaches = func(addr string, seen map[string]bool) bool {
		if v, ok := memo[addr]; ok {
			return v
		}
		if seen[addr] {
			return false
		}
		seen[addr] = true
		ok := false
		for d := range deps[addr] {
			if d == apiEnablement || reaches(d, seen) {
				ok = true
				break
			}
		}
		memo[addr] = ok
		return ok
	}
	var problems []string
	for _, b := range cfg.blocks {
		if b.Type != "resource" || b.addr() == apiEnablement || b.Labels[0] == "google_project_service" {
			continue
		}
		if !reaches(b.addr(), map[string]bool{}) {
			problems = append(problems, fmt.Sprintf("%s (%s) does not depend on %s: add depends_on = [%s] or it races the API's enablement on a fresh project",
				b.addr(), b.file, apiEnablement, apiEnablement))
		}
	}
	return problems
}

// accountIDPattern reads the account_id template "${var.name_prefix}SUFFIX".
var accountIDPattern = regexp.MustCompile(`^\$\{var\.name_prefix\}([a-z0-9-]*)$`)

// prefixBounds reads the length bounds of name_prefix from its validation regex
// ^[a-z][a-z0-9-]{MIN,MAX}$.
func prefixBounds(cfg *tfConfig) (int, int, bool) {
	for _, b := range cfg.blocks {
		if b.Type != "variable" || len(b.Labels) != 1 || b.Labels[0] != "name_prefix" {
			continue
		}
		v := subBlock(b.Body, "validation")
		if v == nil {
			return 0, 0, false
		}
		src := string(attr(v.Body, "condition").Range().SliceBytes(cfg.files[b.file]))
		m := regexp.MustCompile(`\^\[a-z\]\[a-z0-9-\]\{(\d+),(\d+)\}\$`).FindStringSubmatch(src)
		if m == nil {
			return 0, 0, false
		}
		lo, _ := strconv.Atoi(m[1])
		hi, _ := strconv.Atoi(m[2])
		return lo + 1, hi + 1, true
	}
	return 0, 0, false
}

// checkPrefixBounds finds service account ids that some allowed name_prefix makes shorter
// than 6 or longer than 30 characters (IAM's bounds for an account id).
func checkPrefixBounds(cfg *tfConfig) []string {
	lo, hi, ok := prefixBounds(cfg)
	if !ok {
		return []string{"variable name_prefix: no validation of the form ^[a-z][a-z0-9-]{MIN,MAX}$ to read its length from"}
	}
	var problems []string
	for _, b := range cfg.ofType("google_service_account") {
		e := attr(b.Body, "account_id")
		if e == nil {
			continue
		}
		src := strings.TrimSpace(string(e.Range().SliceBytes(cfg.files[b.file])))
		m := accountIDPattern.FindStringSubmatch(strings.Trim(src, `"`))
		if m == nil {
			problems = append(problems, fmt.Sprintf("%s: account_id %s is not \"${var.name_prefix}SUFFIX\": can't check its length", b.addr(), src))
			continue
		}
		if n := lo + len(m[1]); n < 6 {
			problems = append(problems, fmt.Sprintf("%s: with a %d-character name_prefix its account id is %d characters (IAM needs 6-30)", b.addr(), lo, n))
		}
		if n := hi + len(m[1]); n > 30 {
			problems = append(problems, fmt.Sprintf("%s: with a %d-character name_prefix its account id is %d characters (IAM needs 6-30)", b.addr(), hi, n))
		}
	}
	return problems
}

// projectOnlyPermissions are permissions on resources that live under a location or the
// project, never under a job or service: granted on a job they never apply.
var projectOnlyPermissions = []string{"run.operations.", "run.jobs.create"}

// checkPermissionScopes finds custom roles holding a project-only permission granted on a
// narrower scope.
func checkPermissionScopes(cfg *tfConfig) []string {
	perms := map[string][]string{}
	for _, b := range cfg.ofType("google_project_iam_custom_role") {
		ps, _ := cfg.strings(attr(b.Body, "permissions"))
		perms[b.Labels[1]] = ps
	}
	grants, _ := tfGrants(cfg)
	var problems []string
	for _, g := range grants {
		name, ok := strings.CutPrefix(g.Role, "custom ")
		if !ok || strings.HasPrefix(g.Scope, "project") {
			continue
		}
		for _, p := range perms[name] {
			for _, po := range projectOnlyPermissions {
				if strings.HasPrefix(p, po) {
					problems = append(problems, fmt.Sprintf("custom role %s holds %s, granted to %s on %s: it applies only on the project (operations are location-level resources)",
						name, p, g.Principal, g.Scope))
				}
			}
		}
	}
	return problems
}

// checkMetricWait finds alert policies on a log-based metric that do not wait for it: an
// alert policy created right after its metric fails with 404. Each must depend on a
// time_sleep that refers to the metric and waits at least a minute.
func checkMetricWait(cfg *tfConfig) []string {
	sleeps := map[string]map[string]bool{}
	for _, b := range cfg.ofType("time_sleep") {
		d, _ := cfg.str(attr(b.Body, "create_duration"))
		if dur, err := parseSeconds(d); err != nil || dur < 60 {
			continue
		}
		sleeps["time_sleep."+b.Labels[1]] = refs(cfg, b.Body)
	}
	var problems []string
	for _, b := range cfg.ofType("google_monitoring_alert_policy") {
		var after []string
		if e := attr(b.Body, "depends_on"); e != nil {
			for _, tr := range e.Variables() {
				if len(tr) >= 2 {
					if a, ok := tr[1].(hcl.TraverseAttr); ok {
						after = append(after, tr.RootName()+"."+a.Name)
					}
				}
			}
		}
		for r := range refs(cfg, b.Body) {
			if !strings.HasPrefix(r, "google_logging_metric.") {
				continue
			}
			waited := false
			for _, s := range after {
				if sleeps[s][r] {
					waited = true
				}
			}
			if !waited {
				problems = append(problems, fmt.Sprintf("%s (%s) uses %s but does not depend on a time_sleep (≥ 60s) after it: created in the same apply it fails with 404", b.addr(), b.file, r))
			}
		}
	}
	return problems
}

// parseSeconds reads Terraform durations such as "180s" or "3m".
func parseSeconds(s string) (int, error) {
	if n, ok := strings.CutSuffix(s, "s"); ok {
		return strconv.Atoi(n)
	}
	if n, ok := strings.CutSuffix(s, "m"); ok {
		m, err := strconv.Atoi(n)
		return m * 60, err
	}
	return 0, fmt.Errorf("duration %q", s)
}

// deployerRoles are, per kind of resource, the predefined role a deployer who is not Owner
// needs to create it (roles/editor covers the rest: it can't set IAM or create custom roles).
var deployerRoles = map[string]string{
	"google_project_iam_member":                   "roles/resourcemanager.projectIamAdmin",
	"google_project_iam_custom_role":              "roles/iam.roleAdmin",
	"google_service_account":                      "roles/iam.serviceAccountAdmin",
	"google_service_account_iam_member":           "roles/iam.serviceAccountAdmin",
	"google_pubsub_topic_iam_member":              "roles/pubsub.admin",
	"google_pubsub_subscription_iam_member":       "roles/pubsub.admin",
	"google_storage_bucket_iam_member":            "roles/storage.admin",
	"google_cloud_run_v2_service_iam_member":      "roles/run.admin",
	"google_cloud_run_v2_job_iam_member":          "roles/run.admin",
	"google_secret_manager_secret_iam_member":     "roles/secretmanager.admin",
	"google_iap_web_cloud_run_service_iam_member": "roles/iap.admin",
	"google_project_service":                      "roles/serviceusage.serviceUsageAdmin",
}

// checkDeployerRoles finds resource kinds whose deployer role docs/deploy.md does not list,
// and IAM kinds this table does not know.
func checkDeployerRoles(cfg *tfConfig, doc string) []string {
	var problems []string
	need := map[string][]string{}
	for _, b := range cfg.blocks {
		if b.Type != "resource" {
			continue
		}
		typ := b.Labels[0]
		r, ok := deployerRoles[typ]
		if !ok {
			if strings.Contains(typ, "_iam_") {
				problems = append(problems, fmt.Sprintf("%s: deploy_test.go does not know which role a deployer needs to create a %s", b.addr(), typ))
			}
			continue
		}
		if !contains(need[r], typ) {
			need[r] = append(need[r], typ)
		}
	}
	// invoker_iam_disabled is set with run.services.setIamPolicy.
	for _, b := range cfg.ofType("google_cloud_run_v2_service") {
		if attr(b.Body, "invoker_iam_disabled") != nil && !contains(need["roles/run.admin"], "invoker_iam_disabled") {
			need["roles/run.admin"] = append(need["roles/run.admin"], "invoker_iam_disabled")
		}
	}
	roles := make([]string, 0, len(need))
	for r := range need {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		if !strings.Contains(doc, "`"+r+"`") {
			problems = append(problems, fmt.Sprintf("docs/deploy.md does not list `%s` for a deployer who is not Owner (needed for %s)", r, strings.Join(need[r], ", ")))
		}
	}
	return problems
}

// checkConsentScreen finds advice that contradicts IAP on Cloud Run, which needs the project
// to be in an organisation (so an Internal consent screen; an External one is never the way).
func checkConsentScreen(doc string) []string {
	if regexp.MustCompile(`\*\*External\*\*`).MatchString(doc) {
		return []string{"docs/deploy.md recommends an External consent screen, but IAP on Cloud Run needs an organisation (infra/README.md)"}
	}
	if !strings.Contains(doc, "organization") {
		return []string{"docs/deploy.md does not say IAP on Cloud Run needs the project to be in an organization"}
	}
	return nil
}

func TestDeployAppliesFirstTime(t *testing.T) {
	cfg := loadTF(t, ".")
	doc, err := os.ReadFile("../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, problems := range map[string][]string{
		"provider floor":    checkProviderFloor(cfg),
		"API dependencies":  checkAPIDependencies(cfg),
		"name prefix":       checkPrefixBounds(cfg),
		"permission scopes": checkPermissionScopes(cfg),
		"metric wait":       checkMetricWait(cfg),
		"deployer roles":    checkDeployerRoles(cfg, string(doc)),
		"consent screen":    checkConsentScreen(string(doc)),
	} {
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
	}
}

// The checkers' own tests: each fed Terraform with the defect it exists to catch.

func TestCheckProviderFloorCatchesDrift(t *testing.T) {
	tf := `
terraform {
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.21"
    }
  }
}
resource "google_cloud_run_v2_service" "ui" {
  iap_enabled = true
}`
	expect(t, checkProviderFloor(mustParseTF(t, tf)), "")
	expect(t, checkProviderFloor(mustParseTF(t, strings.Replace(tf, "7.21", "6.40", 1))), "sets iap_enabled, accepted from google provider 7.21, but required_providers allows >= 6.40")
	expect(t, checkProviderFloor(mustParseTF(t, strings.Replace(tf, ">= 7.21", "~> 7.0", 1))), "is not \">= X.Y\"")
	expect(t, checkProviderFloor(mustParseTF(t, tf+`
resource "time_sleep" "w" {
  create_duration = "60s"
}`)), "resources of hashicorp/time are used, but required_providers does not declare it")
}

func TestCheckAPIDependenciesCatchesDrift(t *testing.T) {
	tf := `
resource "google_project_service" "apis" {
  service = "iam.googleapis.com"
}
resource "google_service_account" "a" {
  account_id = "abcdef"
  depends_on = [google_project_service.apis]
}
resource "google_project_iam_member" "a" {
  member = google_service_account.a.member
}
locals {
  agent = "serviceAccount:${google_project_service.apis.id}"
}
resource "google_pubsub_topic_iam_member" "agent" {
  member = local.agent
}`
	expect(t, checkAPIDependencies(mustParseTF(t, tf)), "")
	// The account no longer waits: neither it nor the grant through it does.
	broken := strings.Replace(tf, "  depends_on = [google_project_service.apis]\n", "", 1)
	expect(t, checkAPIDependencies(mustParseTF(t, broken)), "google_service_account.a (snippet.tf) does not depend on google_project_service.apis")
	expect(t, checkAPIDependencies(mustParseTF(t, broken)), "google_project_iam_member.a (snippet.tf) does not depend")
}

func TestCheckPrefixBoundsCatchesDrift(t *testing.T) {
	tf := `
variable "name_prefix" {
  validation {
    condition = can(regex("^[a-z][a-z0-9-]{2,14}$", var.name_prefix))
  }
}
resource "google_service_account" "ui" {
  account_id = "${var.name_prefix}-ui"
}
resource "google_service_account" "slack_actions" {
  account_id = "${var.name_prefix}-slack-actions"
}`
	expect(t, checkPrefixBounds(mustParseTF(t, tf)), "")
	expect(t, checkPrefixBounds(mustParseTF(t, strings.Replace(tf, "{2,14}", "{0,14}", 1))), "google_service_account.ui: with a 1-character name_prefix its account id is 4 characters")
	expect(t, checkPrefixBounds(mustParseTF(t, strings.Replace(tf, "{2,14}", "{2,16}", 1))), "google_service_account.slack_actions: with a 17-character name_prefix its account id is 31 characters")
	expect(t, checkPrefixBounds(mustParseTF(t, strings.Replace(tf, `"${var.name_prefix}-ui"`, `"fixed-ui"`, 1))), "can't check its length")
}

func TestCheckPermissionScopesCatchesDrift(t *testing.T) {
	tf := `
resource "google_service_account" "dispatch" {
  account_id = "dispatch"
}
resource "google_cloud_run_v2_job" "worker" {
  name = "w"
}
resource "google_project_iam_custom_role" "launcher" {
  permissions = ["run.jobs.run", "run.operations.get"]
}
resource "google_cloud_run_v2_job_iam_member" "d" {
  name   = google_cloud_run_v2_job.worker.name
  role   = google_project_iam_custom_role.launcher.id
  member = google_service_account.dispatch.member
}`
	expect(t, checkPermissionScopes(mustParseTF(t, tf)), "custom role launcher holds run.operations.get, granted to dispatch on job worker")
	ok := strings.Replace(tf, `, "run.operations.get"`, "", 1) + `
resource "google_project_iam_custom_role" "ops" {
  permissions = ["run.operations.get"]
}
resource "google_project_iam_member" "ops" {
  project = "p"
  role    = google_project_iam_custom_role.ops.id
  member  = google_service_account.dispatch.member
}`
	expect(t, checkPermissionScopes(mustParseTF(t, ok)), "")
}

func TestCheckMetricWaitCatchesDrift(t *testing.T) {
	tf := `
resource "google_logging_metric" "m" {
  name = "updraft/m"
}
resource "time_sleep" "metrics" {
  create_duration = "180s"
  triggers = {
    m = google_logging_metric.m.id
  }
}
resource "google_monitoring_alert_policy" "p" {
  conditions {
    condition_threshold {
      filter = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.m.name}\""
    }
  }
  depends_on = [time_sleep.metrics]
}`
	expect(t, checkMetricWait(mustParseTF(t, tf)), "")
	expect(t, checkMetricWait(mustParseTF(t, strings.Replace(tf, "  depends_on = [time_sleep.metrics]\n", "", 1))), "google_monitoring_alert_policy.p (snippet.tf) uses google_logging_metric.m but does not depend on a time_sleep")
	expect(t, checkMetricWait(mustParseTF(t, strings.Replace(tf, `"180s"`, `"5s"`, 1))), "does not depend on a time_sleep (≥ 60s)")
	expect(t, checkMetricWait(mustParseTF(t, strings.Replace(tf, "m = google_logging_metric.m.id", `m = "x"`, 1))), "uses google_logging_metric.m")
}

func TestCheckDeployerRolesCatchesDrift(t *testing.T) {
	tf := `
resource "google_project_iam_custom_role" "r" {
  permissions = ["run.operations.get"]
}
resource "google_pubsub_topic_iam_member" "t" {
  role = "roles/pubsub.publisher"
}`
	doc := "you need `roles/iam.roleAdmin` and `roles/pubsub.admin`"
	expect(t, checkDeployerRoles(mustParseTF(t, tf), doc), "")
	expect(t, checkDeployerRoles(mustParseTF(t, tf), "you need `roles/editor`"), "does not list `roles/iam.roleAdmin` for a deployer who is not Owner (needed for google_project_iam_custom_role)")
	expect(t, checkDeployerRoles(mustParseTF(t, tf+`
resource "google_bigquery_dataset_iam_member" "b" {
  role = "roles/bigquery.dataViewer"
}`), doc), "does not know which role a deployer needs to create a google_bigquery_dataset_iam_member")
	expect(t, checkConsentScreen("an **External** consent screen otherwise"), "recommends an External consent screen")
	expect(t, checkConsentScreen("IAP on Cloud Run needs the project to be in an organization"), "")
}
