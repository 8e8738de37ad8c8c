// Package slackactions serves Slack's interactivity requests: POST /slack/actions, where
// Slack sends a click on an alert's Retry button (action_id updraft_retry, value
// {"dag_id", "run_id", "task_id"}). The handler verifies Slack's signature and timestamp,
// acknowledges at once and does the work after: the Slack user's email (users.info) must
// hold the operator role on the DAG (package access), the task is cleared with its
// downstream and re-dispatched (engine.ClearTasks), the message says who retried it, and
// every click, allowed or refused, is audited. A refused click changes nothing and tells
// the user, in a message only they see, which role they need and how to get it.
//
// It is mounted by the scheduler service (scheduler/service) and wrapped by the SlackActions
// function (functions/). The button's action_id and value are its contract with the alert
// messages (package alerts). Its import rules are rows of the table in internal/layers
// (rules.go).
package slackactions
