// Package alerts posts Updraft's Slack alerts (DESIGN.md, "Alerts"): a DAG's or task's
// `alerts.slack` block says where (a templated channel, a Slack connection) and on what
// (`failure` when retries are exhausted, `retry`, `success`, `sla_miss`).
//
// The Alerter consumes task events from its own Pub/Sub subscription (psqueue.SubAlerts on the
// events topic), apart from the advancer, so a slow, rate-limited or down Slack never fails or
// delays a task. Its Tick, called from the scheduler's tick, posts the failure digest and the
// SLA misses.
//
// One message per run and channel: the run's first alert posts the parent message; later
// ones are replies in its thread, and each updates the parent with the run's current state.
// Correctness rests on the store's conditional writes, never on delivery order or a lock:
//
//   - alert_sent/{alert~channel} is created before an alert is posted (Create wins once), so
//     a duplicated or concurrent event never posts twice;
//   - alert_threads/{run~channel} is created by whoever posts the parent, so a run never has
//     two parents in a channel; the others wait for its ts;
//   - a claim left "pending" by a delivery that died may be taken over once it is older than
//     Config.ClaimTTL; a holder starts no Slack call that could end after its claim's bound,
//     so a takeover never races the original post;
//   - the digest's cursor (alert_digests/{channel}) is moved by a conditional write before
//     the digest is posted, so two ticks post it once; an SLA is alerted once per run and
//     target (its claim), and the run's sla_due_at moves on by a conditional write.
//
// Slack calls go through slack-go. A 429 is waited out (its Retry-After, bounded), other
// transient failures are retried with exponential backoff, within the claim's bound; then
// the alert is marked failed, the failure is logged, and the event is acknowledged (a task
// event is never redelivered for an alert's sake).
//
// The Retry button's contract with the Slack actions endpoint: a button element with
// action_id "updraft_retry" whose value is the JSON object
//
//	{"dag_id": "...", "run_id": "...", "task_id": "..."}
//
// (RetryActionID, RetryValue). The View log button links to
// Config.UIURL + "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}?try=N" (LogURL).
//
// DAG specs and variables come through Specs (an *engine.Engine is one), bot tokens through a
// Tokens function, and events as the bytes a subscription delivers. It uses the store
// (fsstore), the core types (scheduler, dag), render for the channel template, and slack-go.
// Its import rules are rows of the table in internal/layers (rules.go).
package alerts
