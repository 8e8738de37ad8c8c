package infra

// Each checker must be able to fail: these feed them deliberately broken Terraform and Go
// source and expect the drift to be reported (and the repaired input to pass).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// expect fails unless problems contains a message with want (or none when want is "").
func expect(t *testing.T, problems []string, want string) {
	t.Helper()
	if want == "" {
		if len(problems) > 0 {
			t.Errorf("want no problem, got %q", problems)
		}
		return
	}
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("want a problem containing %q, got %q", want, problems)
}

const fsSource = `package fsstore

import "cloud.google.com/go/firestore"

const ColRuns = "runs"

type Run struct {
	DagID    string    ` + "`firestore:\"dag_id\"`" + `
	ExpireAt time.Time ` + "`firestore:\"expire_at\"`" + `
}

func (s *Store) Runs(ctx context.Context, dagID string, before bool) error {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID)
	if before {
		q = q.OrderBy("logical_date", firestore.Desc)
	} else {
		q = q.OrderBy("logical_date", firestore.Asc)
	}
	return queryAll[Run](ctx, s, q.Limit(1))
}

func (s *Store) Count(ctx context.Context, key, task string) error {
	q := s.fs.Collection(ColRuns).Where("run_key", "==", key).Where("downstream", "array-contains", task)
	_, err := q.NewAggregationQuery().WithSum("done", "d").WithCount("n").Get(ctx)
	return err
}

func (s *Store) Due(ctx context.Context, now time.Time) error {
	return queryAll[Run](ctx, s, s.fs.Collection(ColRuns).Where("due", "<=", now).OrderBy("due", firestore.Asc))
}

func (s *Store) CreateRun(ctx context.Context, r *Run) error {
	_, err := s.fs.Collection(ColRuns).Doc(r.DagID).Create(ctx, r)
	return err
}
`

const goodIndexes = `
resource "google_firestore_index" "desc" {
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "logical_date"
    order      = "DESCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}
resource "google_firestore_index" "asc" {
  collection = "runs"
  fields {
    field_path = "dag_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "logical_date"
    order      = "ASCENDING"
  }
}
resource "google_firestore_index" "count" {
  collection = "runs"
  fields {
    field_path   = "downstream"
    array_config = "CONTAINS"
  }
  fields {
    field_path = "run_key"
    order      = "ASCENDING"
  }
  fields {
    field_path = "done"
    order      = "ASCENDING"
  }
}
`

func TestCheckIndexesCatchesDrift(t *testing.T) {
	queries, problems := scanQueries(parseGoSource(t, "fs.go", fsSource))
	expect(t, problems, "")
	if len(queries) != 4 {
		t.Fatalf("want 4 query shapes (two branches, the count, the due range), got %d: %v", len(queries), queries)
	}
	drop := func(src, name string) string {
		i := strings.Index(src, `resource "google_firestore_index" "`+name+`"`)
		j := strings.Index(src[i+1:], "resource ")
		if j < 0 {
			return src[:i]
		}
		return src[:i] + src[i+1+j:]
	}
	for _, tc := range []struct{ name, tf, want string }{
		{"all there", goodIndexes, ""},
		{"one branch's index missing", drop(goodIndexes, "asc"), "no google_firestore_index for Runs"},
		{"aggregated field missing", strings.Replace(goodIndexes, `"done"`, `"other"`, 1), "no google_firestore_index for Count"},
		{"wrong direction", strings.Replace(goodIndexes, `"DESCENDING"
  }
  fields {
    field_path = "__name__"`, `"ASCENDING"
  }
  fields {
    field_path = "__name__"`, 1), "__name__ must follow"},
		{"an index nothing needs", goodIndexes + `
resource "google_firestore_index" "stale" {
  collection = "runs"
  fields {
    field_path = "state"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "ASCENDING"
  }
}`, "google_firestore_index.stale (runs"},
	} {
		t.Run(tc.name, func(t *testing.T) { expect(t, checkIndexes(queries, mustParseTF(t, tc.tf)), tc.want) })
	}
}

func TestScanQueriesRefusesWhatItCantRead(t *testing.T) {
	_, problems := scanQueries(parseGoSource(t, "fs.go", `package fsstore
func (s *Store) F(col, field string) {
	s.fs.Collection(col).Where(field, "==", 1).Documents(ctx)
}`))
	expect(t, problems, "not a constant")
	expect(t, problems, "not a literal")
}

func TestQueryBuildersOutsideFsstore(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.go")
	src := "package x\nimport \"cloud.google.com/go/firestore\"\nfunc f(c *firestore.Client) { c.Collection(\"runs\").Where(\"a\", \"==\", 1) }\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := queryBuilders(t, p); len(got) != 1 {
		t.Errorf("want the Where call found, got %v", got)
	}
}

func TestCheckTTLCatchesDrift(t *testing.T) {
	files := parseGoSource(t, "fs.go", fsSource)
	expiring := expiringCollections(files, nil)
	if len(expiring) != 1 || expiring[0] != "runs" {
		t.Fatalf("want [runs] carrying expire_at, got %v", expiring)
	}
	all := map[string]bool{"runs": true}
	ttl := `resource "google_firestore_field" "ttl" {
  for_each   = toset(["runs"])
  collection = each.value
  field      = "expire_at"
  ttl_config {}
}`
	expect(t, checkTTL(expiring, all, mustParseTF(t, ttl)), "")
	expect(t, checkTTL(expiring, all, mustParseTF(t, strings.Replace(ttl, `["runs"]`, `["rnus"]`, 1))), `collection "runs" is written with expire_at`)
	expect(t, checkTTL(expiring, all, mustParseTF(t, strings.Replace(ttl, `["runs"]`, `["runs", "gone"]`, 1))), `"gone", which fsstore has no`)
	expect(t, checkTTL(expiring, all, mustParseTF(t, strings.Replace(ttl, `"expire_at"`, `"ttl"`, 1))), "other than expire_at")
}

func TestCheckEnvCatchesDrift(t *testing.T) {
	c := component{name: "x", tf: "google_cloud_run_v2_service.x"}
	read := map[string][]string{"GOOGLE_CLOUD_PROJECT": {"main.go:1"}, "PORT": {"main.go:2"}}
	expect(t, checkEnv(c, read, map[string]bool{"GOOGLE_CLOUD_PROJECT": true}), "")
	expect(t, checkEnv(c, read, map[string]bool{}), "reads GOOGLE_CLOUD_PROJECT")
	expect(t, checkEnv(c, read, map[string]bool{"GOOGLE_CLOUD_PROJECT": true, "UNREAD": true}), "sets UNREAD")
}

// TestEnvReaderFollowsTheCode builds a tiny module and checks what the reader finds: names
// through a getenv parameter, a helper's parameter, a literal range, only the component's
// FUNCTION_TARGET branch, and a read it can't resolve.
func TestEnvReaderFollowsTheCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	dir := t.TempDir()
	write := func(name, src string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+module+"\n\ngo 1.22\n")
	write("lib/lib.go", `package lib

const EnvB = "B"

func Config(getenv func(string) string) string { return getenv(EnvB) + helper(getenv, "C") }

func helper(getenv func(string) string, name string) string { return getenv(name) }

func Loop(getenv func(string) string) {
	for _, k := range []string{"D", "E"} {
		_ = getenv(k)
	}
}

func Dynamic(getenv func(string) string, k string) string { return getenv("X_" + k) }

func Unused(getenv func(string) string) string { return getenv("NEVER") }
`)
	write("cmd/app/main.go", `package main

import (
	"os"

	"`+module+`/lib"
)

func main() {
	_ = os.Getenv("A")
	_ = lib.Config(os.Getenv)
	switch os.Getenv("FUNCTION_TARGET") {
	case "Dispatch":
		lib.Loop(os.Getenv)
	case "Advance":
		_ = os.Getenv("ADVANCE_ONLY")
	}
	if os.Getenv("FUNCTION_TARGET") != "Dispatch" {
		_ = os.Getenv("NOT_DISPATCH")
	} else {
		_ = os.Getenv("DISPATCH_ELSE")
	}
	if "Advance" == os.Getenv("FUNCTION_TARGET") {
		_ = os.Getenv("ADVANCE_IF")
	}
	if len(os.Args) > 5 {
		_ = lib.Dynamic(os.Getenv, os.Args[1])
	}
}
`)
	r := loadModuleAt(t, dir)
	got := r.envVars(component{name: "app", main: "cmd/app", target: "Dispatch"})
	for _, n := range []string{"A", "B", "C", "D", "E", "FUNCTION_TARGET", "DISPATCH_ELSE"} {
		if _, ok := got.names[n]; !ok {
			t.Errorf("%s not found; found %v", n, sortedKeys(got.names))
		}
	}
	for _, n := range []string{"ADVANCE_ONLY", "NEVER", "NOT_DISPATCH", "ADVANCE_IF"} {
		if _, ok := got.names[n]; ok {
			t.Errorf("%s found: it is not reachable for Dispatch", n)
		}
	}
	if len(got.unresolved) != 1 || !strings.Contains(got.unresolved[0], "lib.go") {
		t.Errorf("want the X_+k read reported unresolved, got %v", got.unresolved)
	}
}

const rolesTF = `
resource "google_service_account" "worker" {
  account_id = "w"
}
resource "google_project_iam_member" "worker_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.worker.member
}
resource "google_pubsub_topic_iam_member" "worker_tasks" {
  topic  = google_pubsub_topic.tasks.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.worker.member
}
`

func TestCheckRolesCatchesDrift(t *testing.T) {
	doc := "| principal | role | on | why |\n| --- | --- | --- | --- |\n" +
		"| `worker` | `roles/datastore.user` | `project` | state |\n" +
		"| `worker` | `roles/pubsub.publisher` | `topic tasks` | fast-follow |\n"
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, rolesTF)), "")
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, strings.Replace(rolesTF, "roles/datastore.user", "roles/datastore.owner", 1))),
		"Terraform grants worker | roles/datastore.owner | project")
	expect(t, checkRoles(docGrants([]byte(doc+"| `worker` | `roles/logging.viewer` | `project` | logs |\n")), mustParseTF(t, rolesTF)),
		"docs/deploy-iam.md grants worker | roles/logging.viewer")
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, rolesTF+`
resource "google_project_iam_binding" "b" {
  role    = "roles/owner"
  members = ["user:x@example.com"]
}`)), "not a kind of grant")
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, rolesTF+`
resource "google_service_account" "idle" {
  account_id = "i"
}`)), "service account idle holds no role")
}

func TestCheckPublicCatchesDrift(t *testing.T) {
	slack := `
resource "google_cloud_run_v2_service_iam_member" "slack_actions_public" {
  name   = google_cloud_run_v2_service.slack_actions.name
  role   = "roles/run.invoker"
  member = "allUsers"
}`
	expect(t, checkPublic(mustParseTF(t, slack)), "google_cloud_run_v2_service_iam_member.slack_actions_public (snippet.tf) mentions allUsers")
	expect(t, checkPublic(mustParseTF(t, strings.Replace(slack, "slack_actions.name", "ui.name", 1))), "mentions allUsers")
	// The Slack actions service turns the invoker check off instead: it verifies Slack's
	// signature. No other service may without OIDC.
	noIAM := `
resource "google_cloud_run_v2_service" "slack_actions" {
  ingress              = "INGRESS_TRAFFIC_ALL"
  invoker_iam_disabled = true
}`
	expect(t, checkPublic(mustParseTF(t, noIAM)), "")
	expect(t, checkPublic(mustParseTF(t, strings.Replace(noIAM, `"slack_actions"`, `"ui"`, 1))), "google_cloud_run_v2_service.ui: invoker_iam_disabled, but it does not set UPDRAFT_OIDC_AUDIENCE")
	expect(t, checkPublic(mustParseTF(t, strings.Replace(slack, `"allUsers"`, `"allAuthenticatedUsers"`, 1))), "mentions allAuthenticatedUsers")
}

// oidcTF is a service that checks OIDC tokens itself, and its one caller.
const oidcTF = `
resource "google_service_account" "tick_invoker" {
  account_id = "t"
}
resource "google_service_account" "scheduler" {
  account_id = "s"
}
resource "google_project_iam_member" "scheduler_datastore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.scheduler.member
}
resource "google_cloud_run_v2_service" "scheduler" {
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
  template {
    service_account = google_service_account.scheduler.email
    containers {
      env {
        name  = "UPDRAFT_OIDC_AUDIENCE"
        value = local.run_url.scheduler
      }
      env {
        name  = "UPDRAFT_OIDC_INVOKERS"
        value = google_service_account.tick_invoker.email
      }
    }
  }
}
resource "google_cloud_scheduler_job" "tick" {
  http_target {
    uri = "${google_cloud_run_v2_service.scheduler.uri}/tick"
    oidc_token {
      service_account_email = google_service_account.tick_invoker.email
      audience              = local.run_url.scheduler
    }
  }
}
`

func TestCheckPublicAllowsOnlyOIDCServicesWithoutTheInvokerCheck(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"checks tokens, internal only", "", "", ""},
		{"invoker check off, ingress all", `"INGRESS_TRAFFIC_INTERNAL_ONLY"`, `"INGRESS_TRAFFIC_ALL"`, `ingress "INGRESS_TRAFFIC_ALL": it must be INGRESS_TRAFFIC_INTERNAL_ONLY`},
		{"invoker check off, no ingress", `ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"`, ``, `ingress "": it must be`},
		{"invoker check off, no audience", `name  = "UPDRAFT_OIDC_AUDIENCE"`, `name  = "UPDRAFT_UI_URL"`, "does not set UPDRAFT_OIDC_AUDIENCE"},
		{"invoker check off, empty invokers", `value = google_service_account.tick_invoker.email
      }
    }`, `value = ""
      }
    }`, "does not set UPDRAFT_OIDC_INVOKERS"},
		{"invoker check off, no OIDC at all", `name  = "UPDRAFT_OIDC_INVOKERS"`, `name  = "UPDRAFT_UI_URL"`, "the service would be public"},
		{"invoker check explicitly on", `invoker_iam_disabled = true`, `invoker_iam_disabled = false`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := oidcTF
			if tc.from != "" {
				if !strings.Contains(tf, tc.from) {
					t.Fatalf("fixture has no %q", tc.from)
				}
				tf = strings.Replace(tf, tc.from, tc.to, 1)
			}
			expect(t, checkPublic(mustParseTF(t, tf)), tc.want)
		})
	}
	// A public service that checks nothing: the UI without IAP, say.
	expect(t, checkPublic(mustParseTF(t, `
resource "google_cloud_run_v2_service" "ui" {
  ingress              = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  invoker_iam_disabled = true
}`)), "google_cloud_run_v2_service.ui: invoker_iam_disabled, but it does not set UPDRAFT_OIDC_AUDIENCE and UPDRAFT_OIDC_INVOKERS")
}

func TestCheckOIDCCatchesDrift(t *testing.T) {
	push := oidcTF + `
resource "google_service_account" "push_invoker" {
  account_id = "p"
}
resource "google_pubsub_subscription" "dispatch" {
  push_config {
    push_endpoint = google_cloud_run_v2_service.scheduler.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = local.run_url.scheduler
    }
  }
}`
	for _, tc := range []struct{ name, tf, from, to, want string }{
		{"as deployed", oidcTF, "", "", ""},
		{"audience of another service", oidcTF, `audience              = local.run_url.scheduler`, `audience              = local.run_url.ui`,
			"its OIDC token's audience is local.run_url.ui, but google_cloud_run_v2_service.scheduler checks UPDRAFT_OIDC_AUDIENCE = local.run_url.scheduler"},
		{"audience with the path", oidcTF, `audience              = local.run_url.scheduler`, `audience              = "${local.run_url.scheduler}/tick"`, "its OIDC token's audience is"},
		{"no audience", oidcTF, `      audience              = local.run_url.scheduler
`, ``, "has no audience"},
		{"token of another account", oidcTF, `service_account_email = google_service_account.tick_invoker.email`, `service_account_email = google_service_account.scheduler.email`,
			"sends google_service_account.scheduler's token, which google_cloud_run_v2_service.scheduler's UPDRAFT_OIDC_INVOKERS does not name"},
		{"invokers typed in", oidcTF, `value = google_service_account.tick_invoker.email`, `value = "t@p.iam.gserviceaccount.com"`, "name the invoker as google_service_account.X.email"},
		{"a second caller not allowed", push, "", "", "sends google_service_account.push_invoker's token"},
		{"a second caller allowed", push, `value = google_service_account.tick_invoker.email`, `value = "${google_service_account.tick_invoker.email},${google_service_account.push_invoker.email}"`, ""},
		{"an invoker that never calls", oidcTF, `value = google_service_account.tick_invoker.email`, `value = join(",", [google_service_account.tick_invoker.email, google_service_account.scheduler.email])`,
			"UPDRAFT_OIDC_INVOKERS names google_service_account.scheduler, which calls it with no token"},
		{"nobody calls it", oidcTF, `uri = "${google_cloud_run_v2_service.scheduler.uri}/tick"`, `uri = "https://example.com/tick"`, "checks OIDC tokens, but no push subscription or Cloud Scheduler job calls it"},
		{"only the invokers set", oidcTF, `name  = "UPDRAFT_OIDC_AUDIENCE"`, `name  = "UPDRAFT_UI_URL"`, "sets only one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := tc.tf
			if tc.from != "" {
				if !strings.Contains(tf, tc.from) {
					t.Fatalf("fixture has no %q", tc.from)
				}
				tf = strings.Replace(tf, tc.from, tc.to, 1)
			}
			expect(t, checkOIDC(mustParseTF(t, tf)), tc.want)
		})
	}
	noCheck := strings.NewReplacer(`name  = "UPDRAFT_OIDC_AUDIENCE"`, `name  = "A"`, `name  = "UPDRAFT_OIDC_INVOKERS"`, `name  = "B"`).Replace(oidcTF)
	expect(t, checkOIDC(mustParseTF(t, noCheck)), "which does not check it")
}

func TestCheckRolesCountsInvokerIdentities(t *testing.T) {
	doc := "| `scheduler` | `roles/datastore.user` | `project` | state |\n"
	// The tick invoker holds no role but is the identity of the tick's OIDC token.
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, oidcTF)), "")
	unused := strings.Replace(oidcTF, "service_account_email = google_service_account.tick_invoker.email", "service_account_email = google_service_account.scheduler.email", 1)
	expect(t, checkRoles(docGrants([]byte(doc)), mustParseTF(t, unused)), "service account tick_invoker holds no role and signs no OIDC token")
}

const pubsubSource = `package psqueue

const (
	TopicTasks          = "t"
	TopicTasksDead      = "t-dead"
	SubDispatch         = "updraft-tasks-dispatch"
	SubTasksDead        = "t-dead-sub"
	MaxDeliveryAttempts = 5
)

func Ensure() {
	subs := []struct{ sub, topic, dead string }{
		{SubDispatch, TopicTasks, TopicTasksDead},
		{SubTasksDead, TopicTasksDead, ""},
	}
	_ = subs
}
`

const pubsubTF = `
locals {
  attempts = 5
}
resource "google_pubsub_topic" "tasks" {
  name = "t"
}
resource "google_pubsub_topic" "tasks_dead" {
  name = "t-dead"
}
resource "google_pubsub_subscription" "dispatch" {
  name                 = "updraft-tasks-dispatch"
  topic                = google_pubsub_topic.tasks.id
  ack_deadline_seconds = 600
  push_config {
    push_endpoint = google_cloud_run_v2_service.dispatch.uri
    oidc_token {
      service_account_email = google_service_account.push_invoker.email
      audience              = "x"
    }
  }
  retry_policy {
    minimum_backoff = "5s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.tasks_dead.id
    max_delivery_attempts = local.attempts
  }
}
resource "google_pubsub_subscription" "dead" {
  name  = "t-dead-sub"
  topic = google_pubsub_topic.tasks_dead.id
}
resource "google_cloud_run_v2_service" "dispatch" {
  template {
    containers {
      env {
        name  = "FUNCTION_TARGET"
        value = "Dispatch"
      }
    }
  }
}
resource "google_pubsub_subscription_iam_member" "a" {
  subscription = google_pubsub_subscription.dispatch.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
resource "google_pubsub_topic_iam_member" "b" {
  topic  = google_pubsub_topic.tasks_dead.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}
resource "google_pubsub_subscription_iam_member" "scheduler_pull_dead" {
  subscription = google_pubsub_subscription.dead.name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.scheduler.member
}
`

func TestCheckPubSubCatchesDrift(t *testing.T) {
	top, problems := readTopology(parseGoSource(t, "queue.go", pubsubSource))
	expect(t, problems, "")
	for _, tc := range []struct{ name, from, to, want string }{
		{"as the code says", "", "", ""},
		{"renamed topic", `name = "t"`, `name = "tasks"`, "topics: Terraform has"},
		{"delivery attempts", "attempts = 5", "attempts = 10", "max_delivery_attempts is not psqueue.MaxDeliveryAttempts"},
		{"no OIDC", "push_invoker.email", "dispatch.email", "must be the push invoker's"},
		{"short ack deadline", "= 600", "= 10", "ack_deadline_seconds must be at least"},
		{"wrong function", `value = "Dispatch"`, `value = "Advance"`, `whose FUNCTION_TARGET is "Advance"`},
		{"dead letters elsewhere", "dead_letter_topic     = google_pubsub_topic.tasks_dead.id", "dead_letter_topic     = google_pubsub_topic.tasks.id", "dead-letters to"},
		{"agent can't dead-letter", `role         = "roles/pubsub.subscriber"`, `role         = "roles/pubsub.viewer"`, "needs roles/pubsub.subscriber"},
		{"tick can't drain the dead letters", "google_pubsub_subscription.dead.name", "google_pubsub_subscription.dispatch.name", "t-dead-sub is pulled by the tick"},
		{"a service account pulls a push subscription", "google_pubsub_subscription.dead.name", "google_pubsub_subscription.dispatch.name", "could pull its messages away"},
		{"subscriber on the project", `resource "google_pubsub_subscription_iam_member" "scheduler_pull_dead" {
  subscription = google_pubsub_subscription.dead.name`, `resource "google_project_iam_member" "scheduler_pull_dead" {
  project      = var.project`, "roles/pubsub.subscriber on the project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := pubsubTF
			if tc.from != "" {
				tf = strings.Replace(tf, tc.from, tc.to, 1)
			}
			expect(t, checkPubSub(top, mustParseTF(t, tf)), tc.want)
		})
	}
}

func TestCheckJobsAndTickCatchDrift(t *testing.T) {
	job := `
resource "google_cloud_run_v2_service" "dispatch" {
  template {
    containers {
      env {
        name  = "UPDRAFT_WORKER_JOB_PREFIX"
        value = "${var.name_prefix}-worker"
      }
    }
  }
}
resource "google_cloud_run_v2_job" "worker" {
  for_each = var.worker_classes
  name     = "${var.name_prefix}-worker-${each.key}"
  template {
    template {
      max_retries = 0
      timeout     = "3600s"
    }
  }
}`
	expect(t, checkJobs(mustParseTF(t, job)), "")
	expect(t, checkJobs(mustParseTF(t, strings.Replace(job, "max_retries = 0", "max_retries = 3", 1))), "max_retries must be 0")
	expect(t, checkJobs(mustParseTF(t, strings.Replace(job, `-worker-${each.key}`, `-job-${each.key}`, 1))), "is not Dispatch's UPDRAFT_WORKER_JOB_PREFIX")

	tick := `
resource "google_cloud_scheduler_job" "tick" {
  schedule = "* * * * *"
  http_target {
    uri = "${google_cloud_run_v2_service.scheduler.uri}/tick"
    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
    }
  }
}`
	expect(t, checkTick(mustParseTF(t, tick)), "")
	expect(t, checkTick(mustParseTF(t, strings.Replace(tick, `"* * * * *"`, `"*/5 * * * *"`, 1))), "every minute")
	expect(t, checkTick(mustParseTF(t, strings.Replace(tick, "scheduler_invoker", "ui", 1))), "tick invoker's")
}

func TestCheckSecretNamesCatchesDrift(t *testing.T) {
	tf := `resource "google_secret_manager_secret" "slack_signing_secret" {
  secret_id = "updraftsys-slack-signing-secret"
}`
	want := map[string]string{"slack_signing_secret": "updraftsys-slack-signing-secret"}
	expect(t, checkSecretNames(mustParseTF(t, tf), want), "")
	expect(t, checkSecretNames(mustParseTF(t, strings.Replace(tf, "signing-secret\"", "signing\"", 1)), want), "the code reads")
}

func TestCheckSettingsCatchDrift(t *testing.T) {
	tag := `variable "image_tag" {
  type = string
}`
	expect(t, checkImageTag(mustParseTF(t, tag)), "")
	expect(t, checkImageTag(mustParseTF(t, strings.Replace(tag, "type = string", `default = "latest"`, 1))), `variable image_tag has a default ("latest")`)
	expect(t, checkImageTag(mustParseTF(t, `variable "tag" {}`)), "no variable image_tag")

	db := `resource "google_firestore_database" "updraft" {
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = "DELETE"
}`
	expect(t, checkFirestoreDeletion(mustParseTF(t, db)), "")
	expect(t, checkFirestoreDeletion(mustParseTF(t, strings.Replace(db, `"DELETE"`, `"ABANDON"`, 1))), "")
	expect(t, checkFirestoreDeletion(mustParseTF(t, strings.Replace(db, `deletion_policy         = "DELETE"`, ``, 1))), "set deletion_policy explicitly")
	expect(t, checkFirestoreDeletion(mustParseTF(t, strings.Replace(db, `var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"`, `"DELETE_PROTECTION_DISABLED"`, 1))),
		"deletion_policy DELETE needs delete_protection_state to follow var.deletion_protection")

	apis := `locals {
  apis = ["artifactregistry.googleapis.com", "run.googleapis.com"]
}
resource "google_artifact_registry_repository" "images" {}`
	mk := "images:\n\tgcloud services enable cloudbuild.googleapis.com artifactregistry.googleapis.com --project '$(PROJECT)'\n"
	expect(t, checkAPIs(mustParseTF(t, apis), mk), "")
	expect(t, checkAPIs(mustParseTF(t, strings.Replace(apis, `"run.googleapis.com"`, `"run.googleapis.com", "cloudbuild.googleapis.com"`, 1)), mk),
		"apis.tf enables cloudbuild.googleapis.com, which no Terraform resource needs")
	expect(t, checkAPIs(mustParseTF(t, strings.Replace(apis, `"artifactregistry.googleapis.com", `, ``, 1)), mk), "enable artifactregistry.googleapis.com in apis.tf")
	expect(t, checkAPIs(mustParseTF(t, apis), mk+"\tgcloud services enable compute.googleapis.com\n"), "add it to apiResources")

	secret := `resource "google_secret_manager_secret" "slack_signing_secret" {
  secret_id = "updraftsys-slack-signing-secret"
}`
	good := "printf '%s' \"$S\" |\n  gcloud secrets versions add updraftsys-slack-signing-secret --project \"$PROJECT\" --data-file=-\n"
	expect(t, checkDocSecrets(mustParseTF(t, secret), map[string]string{"a.md": good}), "")
	expect(t, checkDocSecrets(mustParseTF(t, secret), map[string]string{"a.md": good + "gcloud secrets create updraftsys-slack-signing-secret \\\n  --data-file=-\n"}),
		"`gcloud secrets create updraftsys-slack-signing-secret`, but Terraform creates it")
	expect(t, checkDocSecrets(mustParseTF(t, secret), map[string]string{"a.md": strings.Replace(good, "signing-secret", "signing", 1)}),
		"`gcloud secrets versions add updraftsys-slack-signing`, a secret Terraform does not create")
	expect(t, checkDocSecrets(mustParseTF(t, secret), map[string]string{"a.md": strings.Replace(good, "signing-secret", "signing", 1)}),
		"no doc says `gcloud secrets versions add updraftsys-slack-signing-secret`")
	expect(t, checkDocSecrets(mustParseTF(t, secret), map[string]string{"a.md": good + "  gcloud secrets add-iam-policy-binding \"$s\" --project x\n"}), "Terraform grants the secrets' access")
}
