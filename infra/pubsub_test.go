package infra

import (
	"fmt"
	"go/ast"
	"go/token"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// psTopology is what psqueue says Pub/Sub holds: topic ids, and per subscription its topic
// and dead-letter topic ("" for none), as Queue.Ensure creates them locally.
type psTopology struct {
	topics       []string
	subs         map[string][2]string // subscription → {topic, dead-letter topic}
	maxDelivery  int64
	ackDeadlineS int64
}

// readTopology reads psqueue's constants and the subscription table in Ensure.
func readTopology(files []goFile) (psTopology, []string) {
	top := psTopology{subs: map[string][2]string{}}
	var problems []string
	strs := stringConsts(files)
	ints := map[string]int64{}
	for _, f := range files {
		for _, d := range f.file.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.CONST {
				for _, s := range gd.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.INT {
								ints[n.Name], _ = strconv.ParseInt(bl.Value, 0, 64)
							}
						}
					}
				}
			}
		}
	}
	for name, v := range strs {
		if strings.HasPrefix(name, "Topic") {
			top.topics = append(top.topics, v)
		}
	}
	sort.Strings(top.topics)
	top.maxDelivery, top.ackDeadlineS = ints["MaxDeliveryAttempts"], ints["ackDeadlineS"]
	if top.maxDelivery == 0 {
		problems = append(problems, "psqueue has no constant MaxDeliveryAttempts")
	}
	// The table: composite literals of three names, {SubX, TopicY, TopicZ or ""}.
	resolve := func(e ast.Expr) (string, bool) {
		if id, ok := e.(*ast.Ident); ok {
			v, ok := strs[id.Name]
			return v, ok
		}
		return strLit(e)
	}
	for _, f := range files {
		ast.Inspect(f.file, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok || len(lit.Elts) != 3 {
				return true
			}
			var vals [3]string
			for i, el := range lit.Elts {
				v, ok := resolve(el)
				if !ok {
					return true
				}
				vals[i] = v
			}
			if id, ok := lit.Elts[0].(*ast.Ident); ok && strings.HasPrefix(id.Name, "Sub") {
				top.subs[vals[0]] = [2]string{vals[1], vals[2]}
			}
			return true
		})
	}
	if len(top.subs) == 0 {
		problems = append(problems, "found no {subscription, topic, dead-letter topic} table in psqueue")
	}
	return top, problems
}

// pushTargets says which function each push subscription feeds (by psqueue's name). The
// dead-letter subscriptions are pulled.
var pushTargets = map[string]string{
	"updraft-tasks-dispatch": "Dispatch",
	"updraft-events-advance": "Advance",
	"updraft-events-alerts":  "Alerts",
	"updraft-runner-push":    runnerTarget,
}

// runnerTarget stands for the warm runner service in pushTargets: the worker image, not a
// function, so it has no FUNCTION_TARGET; its push subscription must feed
// google_cloud_run_v2_service.runner.
const runnerTarget = "runner"

// addRunner adds the runner's topic and subscription, which runjobs names (Dispatch
// publishes to the topic; psqueue does not know it), to psqueue's topology: the
// subscription dead-letters to the tasks' dead-letter topic.
func addRunner(top psTopology, runjobs []goFile) (psTopology, []string) {
	strs := stringConsts(runjobs)
	topic, sub := strs["RunnerTopic"], strs["RunnerSubscription"]
	if topic == "" || sub == "" {
		return top, []string{"runjobs has no RunnerTopic and RunnerSubscription constants"}
	}
	top.topics = append(top.topics, topic)
	sort.Strings(top.topics)
	top.subs[sub] = [2]string{topic, top.subs["updraft-tasks-dispatch"][1]}
	return top, nil
}

// deadLetterReader is the component that drains the pulled (dead-letter) subscriptions: the
// tick fails the dead-lettered tasks and logs the dead-lettered events.
const deadLetterReader = "scheduler"

// minPushAckDeadline: a push request's work (inline tasks, Slack calls) must fit the ack
// deadline, and Alerts waits out Slack's rate limits.
const minPushAckDeadline = 120

// checkPubSub compares the Terraform's topics and subscriptions with psqueue's.
func checkPubSub(top psTopology, cfg *tfConfig) []string {
	var problems []string
	topicName := map[string]string{} // resource name → topic id
	var tfTopics []string
	for _, b := range cfg.ofType("google_pubsub_topic") {
		n, ok := cfg.str(attr(b.Body, "name"))
		if !ok {
			problems = append(problems, b.addr()+": name is not a literal (psqueue's names are fixed)")
			continue
		}
		topicName[b.Labels[1]] = n
		tfTopics = append(tfTopics, n)
	}
	sort.Strings(tfTopics)
	if fmt.Sprint(tfTopics) != fmt.Sprint(top.topics) {
		problems = append(problems, fmt.Sprintf("topics: Terraform has %v, psqueue %v", tfTopics, top.topics))
	}
	seen := map[string]bool{}
	for _, b := range cfg.ofType("google_pubsub_subscription") {
		name, ok := cfg.str(attr(b.Body, "name"))
		if !ok {
			problems = append(problems, b.addr()+": name is not a literal")
			continue
		}
		seen[name] = true
		want, ok := top.subs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: subscription %q is not one of psqueue's", b.addr(), name))
			continue
		}
		t, _ := refName(attr(b.Body, "topic"), "google_pubsub_topic")
		if topicName[t] != want[0] {
			problems = append(problems, fmt.Sprintf("%s reads topic %q; psqueue says %q", name, topicName[t], want[0]))
		}
		dl := subBlock(b.Body, "dead_letter_policy")
		switch {
		case want[1] == "" && dl != nil:
			problems = append(problems, fmt.Sprintf("%s has a dead-letter policy; psqueue gives it none", name))
		case want[1] != "" && dl == nil:
			problems = append(problems, fmt.Sprintf("%s has no dead-letter policy; psqueue dead-letters it to %q", name, want[1]))
		case dl != nil:
			d, _ := refName(attr(dl.Body, "dead_letter_topic"), "google_pubsub_topic")
			if topicName[d] != want[1] {
				problems = append(problems, fmt.Sprintf("%s dead-letters to %q; psqueue says %q", name, topicName[d], want[1]))
			}
			if n, ok := cfg.num(attr(dl.Body, "max_delivery_attempts")); !ok || n != top.maxDelivery {
				problems = append(problems, fmt.Sprintf("%s: max_delivery_attempts is not psqueue.MaxDeliveryAttempts (%d)", name, top.maxDelivery))
			}
			if subBlock(b.Body, "retry_policy") == nil {
				problems = append(problems, name+": no retry_policy (backoff between redeliveries)")
			}
			if !hasAgentGrant(cfg, "google_pubsub_subscription_iam_member", "subscription", "google_pubsub_subscription", b.Labels[1], "roles/pubsub.subscriber") {
				problems = append(problems, name+": Pub/Sub's service agent needs roles/pubsub.subscriber on it to dead-letter")
			}
			if !hasAgentGrant(cfg, "google_pubsub_topic_iam_member", "topic", "google_pubsub_topic", d, "roles/pubsub.publisher") {
				problems = append(problems, name+": Pub/Sub's service agent needs roles/pubsub.publisher on its dead-letter topic")
			}
		}
		push := subBlock(b.Body, "push_config")
		target, isPush := pushTargets[name]
		switch {
		case isPush && push == nil:
			problems = append(problems, fmt.Sprintf("%s must push to the %s function", name, target))
		case !isPush && push != nil:
			problems = append(problems, fmt.Sprintf("%s pushes; it is pulled", name))
		case push != nil:
			oidc := subBlock(push.Body, "oidc_token")
			if oidc == nil {
				problems = append(problems, name+": push without an oidc_token")
			} else {
				if sa, _ := refName(attr(oidc.Body, "service_account_email"), "google_service_account"); sa != "push_invoker" {
					problems = append(problems, name+": its OIDC token must be the push invoker's")
				}
				if attr(oidc.Body, "audience") == nil {
					problems = append(problems, name+": its OIDC token has no audience")
				}
			}
			svc, _ := refName(attr(push.Body, "push_endpoint"), "google_cloud_run_v2_service")
			if target == runnerTarget {
				if svc != "runner" {
					problems = append(problems, fmt.Sprintf("%s pushes to google_cloud_run_v2_service.%s, not the runner", name, svc))
				}
			} else if got := functionTarget(cfg, svc); got != target {
				problems = append(problems, fmt.Sprintf("%s pushes to google_cloud_run_v2_service.%s, whose FUNCTION_TARGET is %q, not %q", name, svc, got, target))
			}
			if n, ok := cfg.num(attr(b.Body, "ack_deadline_seconds")); !ok || n < minPushAckDeadline {
				problems = append(problems, fmt.Sprintf("%s: ack_deadline_seconds must be at least %d", name, minPushAckDeadline))
			}
		}
	}
	problems = append(problems, checkSubscribers(cfg)...)
	for s := range top.subs {
		if !seen[s] {
			problems = append(problems, fmt.Sprintf("psqueue's subscription %q is not in Terraform", s))
		}
	}
	sort.Strings(problems)
	return problems
}

// checkSubscribers: the scheduler may pull each dead-letter (pulled) subscription, granted on
// the subscription; no service account may pull a push subscription (it would take messages
// away from the function), and nobody gets roles/pubsub.subscriber on the project.
func checkSubscribers(cfg *tfConfig) []string {
	var problems []string
	const subscriber = "roles/pubsub.subscriber"
	readers := map[string]map[string]bool{} // subscription resource → service accounts
	for _, b := range cfg.ofType("google_pubsub_subscription_iam_member") {
		if r, _ := cfg.str(attr(b.Body, "role")); r != subscriber {
			continue
		}
		sub, _ := refName(attr(b.Body, "subscription"), "google_pubsub_subscription")
		if sa, ok := refName(attr(b.Body, "member"), "google_service_account"); ok {
			if readers[sub] == nil {
				readers[sub] = map[string]bool{}
			}
			readers[sub][sa] = true
		}
	}
	for _, b := range cfg.ofType("google_project_iam_member") {
		if r, _ := cfg.str(attr(b.Body, "role")); r == subscriber {
			problems = append(problems, b.addr()+": roles/pubsub.subscriber on the project reads every subscription, the push ones too: grant it on the subscriptions that need it")
		}
	}
	for _, b := range cfg.ofType("google_pubsub_subscription") {
		name, _ := cfg.str(attr(b.Body, "name"))
		sub := b.Labels[1]
		if _, isPush := pushTargets[name]; isPush {
			for _, sa := range sortedKeys(readers[sub]) {
				problems = append(problems, fmt.Sprintf("%s: google_service_account.%s holds %s on it and could pull its messages away from the function", name, sa, subscriber))
			}
			continue
		}
		if !readers[sub][deadLetterReader] {
			problems = append(problems, fmt.Sprintf("%s is pulled by the tick: google_service_account.%s needs %s on it (a google_pubsub_subscription_iam_member)", name, deadLetterReader, subscriber))
		}
	}
	return problems
}

// hasAgentGrant reports whether Pub/Sub's service agent holds role on resource ref.name.
func hasAgentGrant(cfg *tfConfig, typ, attrName, ref, name, role string) bool {
	for _, b := range cfg.ofType(typ) {
		n, _ := refName(attr(b.Body, attrName), ref)
		r, _ := cfg.str(attr(b.Body, "role"))
		if n == name && r == role && rootRef(attr(b.Body, "member")) == "local.pubsub_agent" {
			return true
		}
	}
	return false
}

// functionTarget is the FUNCTION_TARGET a Cloud Run service sets.
func functionTarget(cfg *tfConfig, svc string) string {
	b := cfg.resources["google_cloud_run_v2_service"][svc]
	if b == nil {
		return ""
	}
	target := ""
	var find func(body *hclsyntax.Body)
	find = func(body *hclsyntax.Body) {
		for _, sb := range body.Blocks {
			if sb.Type == "env" {
				if n, _ := cfg.str(attr(sb.Body, "name")); n == "FUNCTION_TARGET" {
					target, _ = cfg.str(attr(sb.Body, "value"))
				}
				continue
			}
			find(sb.Body)
		}
	}
	find(b.Body)
	return target
}

func TestPubSubMatchesPsqueue(t *testing.T) {
	top, problems := readTopology(parseGoDir(t, "../internal/psqueue"))
	for _, p := range problems {
		t.Fatal(p)
	}
	top, problems = addRunner(top, parseGoDir(t, "../internal/runjobs"))
	for _, p := range problems {
		t.Fatal(p)
	}
	for _, p := range checkPubSub(top, loadTF(t, ".")) {
		t.Error(p)
	}
}

// checkJobs: worker jobs never retry (Updraft owns retries), have a timeout, and are named
// as Dispatch finds them (UPDRAFT_WORKER_JOB_PREFIX-CLASS).
func checkJobs(cfg *tfConfig) []string {
	var problems []string
	jobs := cfg.ofType("google_cloud_run_v2_job")
	if len(jobs) == 0 {
		problems = append(problems, "no worker job")
	}
	prefix := ""
	if d := cfg.resources["google_cloud_run_v2_service"]["dispatch"]; d != nil {
		prefix = envSource(cfg, d, "UPDRAFT_WORKER_JOB_PREFIX")
	}
	for _, b := range jobs {
		inner := subBlock(b.Body, "template", "template")
		if inner == nil {
			problems = append(problems, b.addr()+": no template.template")
			continue
		}
		if n, ok := cfg.num(attr(inner.Body, "max_retries")); !ok || n != 0 {
			problems = append(problems, b.addr()+": max_retries must be 0 (Updraft owns retries)")
		}
		if attr(inner.Body, "timeout") == nil {
			problems = append(problems, b.addr()+": no timeout")
		}
		name := exprSource(cfg, b, attr(b.Body, "name"))
		if want := strings.TrimSuffix(prefix, `"`) + `-${each.key}"`; prefix == "" || name != want {
			problems = append(problems, fmt.Sprintf("%s: name %s is not Dispatch's UPDRAFT_WORKER_JOB_PREFIX (%s) + \"-\" + the class", b.addr(), name, prefix))
		}
	}
	return problems
}

// envSource is the source text of the value of env var name on a resource.
func envSource(cfg *tfConfig, b *tfBlock, name string) string {
	var out string
	var find func(body *hclsyntax.Body)
	find = func(body *hclsyntax.Body) {
		for _, sb := range body.Blocks {
			if sb.Type == "env" {
				if n, _ := cfg.str(attr(sb.Body, "name")); n == name {
					out = exprSource(cfg, b, attr(sb.Body, "value"))
				}
				continue
			}
			find(sb.Body)
		}
	}
	find(b.Body)
	return out
}

func exprSource(cfg *tfConfig, b *tfBlock, e hclsyntax.Expression) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(string(e.Range().SliceBytes(cfg.files[b.file])))
}

func TestWorkerJobs(t *testing.T) {
	for _, p := range checkJobs(loadTF(t, ".")) {
		t.Error(p)
	}
}

// checkTick: Cloud Scheduler calls the scheduler's /tick every minute with the tick
// invoker's OIDC token.
func checkTick(cfg *tfConfig) []string {
	var problems []string
	jobs := cfg.ofType("google_cloud_scheduler_job")
	if len(jobs) != 1 {
		return []string{fmt.Sprintf("want one google_cloud_scheduler_job, have %d", len(jobs))}
	}
	b := jobs[0]
	if s, _ := cfg.str(attr(b.Body, "schedule")); s != "* * * * *" {
		problems = append(problems, b.addr()+": the tick runs every minute (* * * * *)")
	}
	ht := subBlock(b.Body, "http_target")
	if ht == nil {
		return append(problems, b.addr()+": no http_target")
	}
	if svc, _ := refName(attr(ht.Body, "uri"), "google_cloud_run_v2_service"); svc != "scheduler" || !strings.Contains(exprSource(cfg, b, attr(ht.Body, "uri")), "/tick") {
		problems = append(problems, b.addr()+": must POST the scheduler service's /tick")
	}
	oidc := subBlock(ht.Body, "oidc_token")
	if oidc == nil {
		return append(problems, b.addr()+": no oidc_token")
	}
	if sa, _ := refName(attr(oidc.Body, "service_account_email"), "google_service_account"); sa != "scheduler_invoker" {
		problems = append(problems, b.addr()+": the OIDC token must be the tick invoker's")
	}
	return problems
}

func TestTickJob(t *testing.T) {
	for _, p := range checkTick(loadTF(t, ".")) {
		t.Error(p)
	}
}

// checkSecretNames: the secrets Terraform creates are the names the code reads.
func checkSecretNames(cfg *tfConfig, want map[string]string) []string {
	var problems []string
	have := map[string]string{}
	for _, b := range cfg.ofType("google_secret_manager_secret") {
		id, _ := cfg.str(attr(b.Body, "secret_id"))
		have[b.Labels[1]] = id
	}
	for res, id := range want {
		if have[res] != id {
			problems = append(problems, fmt.Sprintf("google_secret_manager_secret.%s: secret_id %q, the code reads %q", res, have[res], id))
		}
	}
	for res := range have {
		if _, ok := want[res]; !ok {
			problems = append(problems, fmt.Sprintf("google_secret_manager_secret.%s: no code reads it (add it to the test's list if it does)", res))
		}
	}
	return problems
}

func TestSecretNames(t *testing.T) {
	sa := stringConsts(parseGoDir(t, "../internal/slackactions"))
	sec := stringConsts(parseGoDir(t, "../internal/secrets"))
	want := map[string]string{
		"slack_signing_secret": sa["SigningSecretName"],
		"slack_bot_token":      sec["connPrefix"] + sa["BotConnection"],
	}
	if ui := stringConsts(parseGoDir(t, "../cmd/updraft-ui")); ui["csrfSecretName"] != "" {
		want["csrf_secret"] = ui["csrfSecretName"]
	}
	for k, v := range want {
		if v == "" || strings.HasSuffix(v, "-") {
			t.Fatalf("can't read the code's name of %s: did a constant move?", k)
		}
	}
	for _, p := range checkSecretNames(loadTF(t, "."), want) {
		t.Error(p)
	}
}
