package infra

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
)

// Inline task types run inside Dispatch's push request: each must be done, in the worst case
// its own request timeouts allow (taskrun.Type.InlineWorstCase), before Cloud Run ends the
// request and before Pub/Sub's acknowledgement deadline redelivers the message. Anything
// longer waits in up_for_reschedule (bigquery.query, cloudrun.job). This keeps a type, or a
// Terraform edit, from waiting inline past them.

// pushDeadline reads Dispatch's request timeout and the tasks push subscription's
// acknowledgement deadline; the push deadline is the smaller.
func pushDeadline(cfg *tfConfig) (request, ack time.Duration, problems []string) {
	svc := cfg.resources["google_cloud_run_v2_service"]["dispatch"]
	if svc == nil {
		return 0, 0, []string{"no google_cloud_run_v2_service.dispatch"}
	}
	tmpl := subBlock(svc.Body, "template")
	if tmpl == nil {
		return 0, 0, []string{"google_cloud_run_v2_service.dispatch has no template"}
	}
	if s, ok := cfg.str(attr(tmpl.Body, "timeout")); !ok {
		problems = append(problems, "google_cloud_run_v2_service.dispatch: template.timeout is not a literal like \"600s\"")
	} else if d, err := time.ParseDuration(s); err != nil {
		problems = append(problems, fmt.Sprintf("google_cloud_run_v2_service.dispatch: template.timeout %q: %v", s, err))
	} else {
		request = d
	}
	sub := cfg.resources["google_pubsub_subscription"]["dispatch"]
	if sub == nil {
		return request, 0, append(problems, "no google_pubsub_subscription.dispatch")
	}
	if ep := subBlock(sub.Body, "push_config"); ep == nil {
		problems = append(problems, "google_pubsub_subscription.dispatch is not a push subscription")
	}
	if n, ok := cfg.num(attr(sub.Body, "ack_deadline_seconds")); !ok {
		problems = append(problems, "google_pubsub_subscription.dispatch: ack_deadline_seconds is not a literal number")
	} else {
		ack = time.Duration(n) * time.Second
	}
	return request, ack, problems
}

// inlineOverruns lists the inline types whose worst case is not below the deadline.
func inlineOverruns(types []taskrun.Type, deadline time.Duration) []string {
	var out []string
	for _, typ := range types {
		if !typ.Inline {
			continue
		}
		if typ.InlineLimit <= 0 {
			out = append(out, typ.Name+": no InlineLimit")
			continue
		}
		if wc := typ.InlineWorstCase(); wc >= deadline {
			out = append(out, fmt.Sprintf("%s: worst case %s (limit %s + cleanup %s + worker %s) is not below the push deadline %s",
				typ.Name, wc, typ.InlineLimit, typ.InlineCleanup, taskrun.WorkerOverhead, deadline))
		}
	}
	return out
}

func TestInlineTypesFinishWithinThePushDeadline(t *testing.T) {
	request, ack, problems := pushDeadline(loadTF(t, "."))
	for _, p := range problems {
		t.Error(p)
	}
	if t.Failed() {
		return
	}
	deadline := min(request, ack)
	types := tasktypes.Builtins().Types()
	inline := 0
	for _, typ := range types {
		if typ.Inline {
			inline++
			t.Logf("%-22s worst case %s", typ.Name, typ.InlineWorstCase())
		}
	}
	if inline < 10 {
		t.Fatalf("only %d inline types in the registry: the check reads the wrong one", inline)
	}
	for _, o := range inlineOverruns(types, deadline) {
		t.Error(o)
	}
	t.Logf("push deadline %s (Dispatch's request timeout %s, the subscription's ack deadline %s)", deadline, request, ack)
}

func TestInlineDeadlineCheckCatchesAShortAckDeadline(t *testing.T) {
	cfg := mustParseTF(t, `
resource "google_cloud_run_v2_service" "dispatch" {
  template {
    timeout = "600s"
  }
}
resource "google_pubsub_subscription" "dispatch" {
  ack_deadline_seconds = 120
  push_config {
    push_endpoint = "https://dispatch"
  }
}
`)
	request, ack, problems := pushDeadline(cfg)
	if len(problems) > 0 || request != 10*time.Minute || ack != 2*time.Minute {
		t.Fatalf("read %s and %s (%v)", request, ack, problems)
	}
	over := inlineOverruns(tasktypes.Builtins().Types(), min(request, ack))
	if len(over) == 0 {
		t.Fatal("a 120 s ack deadline passed the check, though inline types may take minutes")
	}
	_, _, problems = pushDeadline(mustParseTF(t, `resource "google_pubsub_subscription" "dispatch" { ack_deadline_seconds = 600 }`))
	if len(problems) == 0 {
		t.Fatal("a missing Dispatch service passed the check")
	}
}
