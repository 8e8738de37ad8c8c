// Package slackpost is the slack.post task type, beside the Slack adapter it posts through
// (internal/slackapi: where the Web API is, how a client is made). It is a package of its own,
// not part of slackapi, because the alerts import slackapi and the task runtime imports the
// alerts: slackapi <- alerts <- taskrun <- slackpost. It must not import internal/tasktypes.
package slackpost
