package infra

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// checkRunner: the warm runner service runs the worker image in runner mode with the worker
// job's environment (the same env contract) as the worker's account, scales to zero, has CPU
// only during requests, bounds its concurrency with the same value it tells the runner, and
// its push subscription's ack deadline is Pub/Sub's maximum (the runner holds the request
// for the task's duration).
func checkRunner(cfg *tfConfig) []string {
	svc := cfg.resources["google_cloud_run_v2_service"]["runner"]
	if svc == nil {
		return []string{"no google_cloud_run_v2_service.runner"}
	}
	var problems []string
	add := func(f string, a ...any) { problems = append(problems, "runner: "+fmt.Sprintf(f, a...)) }
	tmpl := subBlock(svc.Body, "template")
	ctr := subBlock(svc.Body, "template", "containers")
	if tmpl == nil || ctr == nil {
		return []string{"runner: no template.containers"}
	}
	if exprSource(cfg, svc, attr(ctr.Body, "image")) != "local.images.worker" {
		add("image must be local.images.worker (the worker jobs' image)")
	}
	if args, ok := cfg.strings(attr(ctr.Body, "args")); !ok || len(args) != 1 || args[0] != "runner" {
		add(`args must be ["runner"] (worker.RunnerArg)`)
	}
	if sa, _ := refName(attr(tmpl.Body, "service_account"), "google_service_account"); sa != "worker" {
		add("must run as google_service_account.worker, as the jobs do")
	}
	if sc := subBlock(tmpl.Body, "scaling"); sc == nil {
		add("no scaling block (min_instance_count = 0: scale to zero)")
	} else if n, ok := cfg.num(attr(sc.Body, "min_instance_count")); !ok || n != 0 {
		add("min_instance_count must be 0 (scale to zero)")
	}
	if res := subBlock(ctr.Body, "resources"); res == nil || !isTrue(cfg, attr(res.Body, "cpu_idle")) {
		add("resources.cpu_idle must be true (CPU only during requests)")
	}
	if attr(tmpl.Body, "timeout") == nil {
		add("no request timeout")
	}
	conc := exprSource(cfg, svc, attr(tmpl.Body, "max_instance_request_concurrency"))
	if env := envSource(cfg, svc, "UPDRAFT_RUNNER_CONCURRENCY"); conc == "" || env != "tostring("+conc+")" {
		add("UPDRAFT_RUNNER_CONCURRENCY (%s) must be max_instance_request_concurrency (%s)", env, conc)
	}
	jobEnv, _ := tfEnv(cfg, "google_cloud_run_v2_job.worker")
	runEnv, _ := tfEnv(cfg, "google_cloud_run_v2_service.runner")
	for _, n := range sortedKeys(jobEnv) {
		if !runEnv[n] {
			add("the worker job sets %s but the runner does not: the runner gets the job's env contract", n)
		} else if job := cfg.resources["google_cloud_run_v2_job"]["worker"]; envSource(cfg, job, n) != envSource(cfg, svc, n) {
			add("%s is %s on the job but %s on the runner", n, envSource(cfg, job, n), envSource(cfg, svc, n))
		}
	}
	for _, b := range cfg.ofType("google_pubsub_subscription") {
		if name, _ := cfg.str(attr(b.Body, "name")); name == "updraft-runner-push" {
			if n, ok := cfg.num(attr(b.Body, "ack_deadline_seconds")); !ok || n != 600 {
				add("updraft-runner-push: ack_deadline_seconds must be 600, Pub/Sub's maximum (runjobs.RunnerMaxTimeout is 9 minutes)")
			}
		}
	}
	return problems
}

func isTrue(cfg *tfConfig, e hclsyntax.Expression) bool {
	v, ok := cfg.value(e)
	return ok && v.Type() == cty.Bool && !v.IsNull() && v.True()
}

func TestRunnerService(t *testing.T) {
	for _, p := range checkRunner(loadTF(t, ".")) {
		t.Error(p)
	}
}

func TestCheckRunnerCatchesDrift(t *testing.T) {
	const good = `
resource "google_cloud_run_v2_job" "worker" {
  template {
    template {
      containers {
        env {
          name  = "GOOGLE_CLOUD_PROJECT"
          value = var.project
        }
      }
    }
  }
}
resource "google_cloud_run_v2_service" "runner" {
  template {
    service_account                  = google_service_account.worker.email
    timeout                          = "3600s"
    max_instance_request_concurrency = local.runner_concurrency
    scaling {
      min_instance_count = 0
    }
    containers {
      image = local.images.worker
      args  = ["runner"]
      resources {
        cpu_idle = true
      }
      env {
        name  = "GOOGLE_CLOUD_PROJECT"
        value = var.project
      }
      env {
        name  = "UPDRAFT_RUNNER_CONCURRENCY"
        value = tostring(local.runner_concurrency)
      }
    }
  }
}
resource "google_pubsub_subscription" "runner" {
  name                 = "updraft-runner-push"
  ack_deadline_seconds = 600
}
`
	expect(t, checkRunner(mustParseTF(t, good)), "")
	for _, c := range []struct{ from, to, want string }{
		{"args  = [\"runner\"]", "args  = []", "args must be"},
		{"image = local.images.worker", "image = local.images.ui", "image must be"},
		{"google_service_account.worker.email", "google_service_account.dispatch.email", "google_service_account.worker"},
		{"min_instance_count = 0", "min_instance_count = 1", "scale to zero"},
		{"cpu_idle = true", "cpu_idle = false", "cpu_idle"},
		{"timeout                          = \"3600s\"", "", "no request timeout"},
		{"value = tostring(local.runner_concurrency)", "value = \"8\"", "UPDRAFT_RUNNER_CONCURRENCY"},
		{"name  = \"GOOGLE_CLOUD_PROJECT\"\n        value = var.project\n      }\n      env {\n        name  = \"UPDRAFT_RUNNER_CONCURRENCY\"", "name  = \"UPDRAFT_RUNNER_CONCURRENCY\"", "env contract"},
		{"ack_deadline_seconds = 600", "ack_deadline_seconds = 60", "ack_deadline_seconds must be 600"},
	} {
		bad := replaceOnce(t, good, c.from, c.to)
		expect(t, checkRunner(mustParseTF(t, bad)), c.want)
	}
}

func replaceOnce(t *testing.T, s, from, to string) string {
	t.Helper()
	if !strings.Contains(s, from) {
		t.Fatalf("the good snippet has no %q", from)
	}
	return strings.Replace(s, from, to, 1)
}
