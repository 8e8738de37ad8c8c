package taskrun

import (
	"context"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
)

// Inline types run inside Dispatch's Pub/Sub push request on GCP, so each must return well
// before the request's timeout and the subscription's acknowledgement deadline (both 600 s in
// infra/). Anything that waits longer submits its work and waits in up_for_reschedule
// (deferred.go). Each inline type declares its worst case: InlineLimit ends its context,
// InlineCleanup bounds what it does after (a cancel request). infra's drift test checks
// InlineLimit + InlineCleanup + WorkerOverhead of every built-in inline type against
// infra/run.tf and infra/pubsub.tf.
const (
	// finishTimeout is what recording an attempt's outcome takes at most while the store
	// answers (the worker's last writes). In a store outage the engine retries those writes
	// for up to five leases: the push may then time out, and its redelivery is dropped at the
	// claim while the attempt is left to the tick's lost-worker check.
	finishTimeout = time.Minute
	// WorkerOverhead is an inline attempt's time around its type's Run: the claim, rendering
	// the arguments (secrets, variables, XCom reads) and recording the outcome (finishTimeout).
	WorkerOverhead = finishTimeout + time.Minute

	// DefaultInlineLimit bounds an inline type that declares no limit of its own.
	DefaultInlineLimit = 5 * time.Minute

	// The built-in inline types' limits (bigquery.query's and cloudrun.job's are in their
	// files). A type's own per-request timeouts sit inside these.
	httpInlineLimit           = 5 * time.Minute // one request (a slow API), its body read
	sensorHTTPInlineLimit     = 5 * time.Minute
	slackInlineLimit          = 2 * time.Minute // slackCallTimeout per call, a retry on 429
	pubsubInlineLimit         = 2 * time.Minute
	branchInlineLimit         = time.Minute // a template: no I/O beyond the worker's reads
	dagRunsInlineLimit        = time.Minute // Firestore reads and a trigger
	sensorTimeInlineLimit     = time.Minute // a clock comparison
	sensorBigQueryInlineLimit = 3 * time.Minute
)

// EnvInlineDeadline shrinks every inline attempt's limit (a Go duration), for tests that
// make the push deadline short so that anything waiting inline past it fails.
const EnvInlineDeadline = "UPDRAFT_INLINE_DEADLINE"

// builtinInlineLimits are the limits of the built-in inline types declared in inline.go.
var builtinInlineLimits = map[string]time.Duration{
	"http": httpInlineLimit, "sensor.http": sensorHTTPInlineLimit, "slack.post": slackInlineLimit,
	"pubsub.publish": pubsubInlineLimit, "branch": branchInlineLimit, "dag.trigger": dagRunsInlineLimit,
	"sensor.dag_run": dagRunsInlineLimit, "sensor.time": sensorTimeInlineLimit,
	"sensor.bigquery_table": sensorBigQueryInlineLimit,
}

// boundInline gives an inline type its limit and makes its Run end by it: the context
// passed on ends at InlineLimit (or UPDRAFT_INLINE_DEADLINE when shorter), whatever the
// task's own timeout.
func boundInline(t Type) Type {
	if !t.Inline || t.Run == nil {
		return t
	}
	if t.InlineLimit <= 0 {
		t.InlineLimit = builtinInlineLimits[t.Name]
	}
	if t.InlineLimit <= 0 {
		t.InlineLimit = DefaultInlineLimit
	}
	run, limit := t.Run, t.InlineLimit
	t.Run = func(ctx context.Context, tc *Context) engine.Result {
		if InContainer(tc) {
			return run(ctx, tc) // no push request: the task's timeout alone bounds it
		}
		d := limit
		if tc.Getenv != nil {
			if v, err := time.ParseDuration(tc.Getenv(EnvInlineDeadline)); err == nil && v > 0 && v < d {
				d = v
			}
		}
		ctx, cancel := context.WithTimeoutCause(ctx, d,
			fmt.Errorf("stopped after %s, the longest an inline %s attempt may take (it runs inside a push request)", d, t.Name))
		defer cancel()
		return run(ctx, tc)
	}
	return t
}

// InlineWorstCase is an inline type's longest time in a push request: its limit, its
// cleanup and the worker's overhead.
func (t Type) InlineWorstCase() time.Duration {
	return t.InlineLimit + t.InlineCleanup + WorkerOverhead
}

// Types returns the registered types, sorted by name.
func (r *Registry) Types() []Type {
	out := make([]Type, 0, len(r.types))
	for _, n := range r.Names() {
		out = append(out, r.types[n])
	}
	return out
}

// inContainer reports whether an inline type's attempt runs in a worker container because its
// task says `executor: job`.
func InContainer(tc *Context) bool { return tc.Task != nil && tc.Task.Executor == "job" }
