// Package slackfake is a fake Slack Web API for local runs and tests: an HTTP server that
// speaks enough of the API for slack-go (`slack.New(token, slack.OptionAPIURL(s.URL+"/api/"))`)
// and records every call, so the dev UI and `updraft slack inbox` can show what would have been
// posted. Slack ships no emulator, and slack-go's slacktest does not record chat.postMessage.
//
// It answers chat.postMessage (thread replies included), chat.update, chat.postEphemeral,
// users.lookupByEmail, users.info, auth.test, conversations.info and api.test, as Slack does:
// HTTP 200 with {"ok": true, ...} or {"ok": false, "error": "code"}. A call needs a bot token
// (any token starting "xoxb-"), as an `Authorization: Bearer` header or, as slack-go sends it,
// a `token` form field. Tokens are never stored: a Call keeps only their type and last four
// characters.
//
// Tests inject Slack's failure modes: FailNext (a 429 with Retry-After, as Slack rate limits;
// or a 5xx), FailNextError (an API error such as channel_not_found) and SetDown (every call
// answers 503).
//
// Channels need no set-up: a message to "#name" goes to a channel whose ID is derived from the
// name (the same in every run), and a message to a user ID goes to a direct-message channel.
//
// The CLI, the dev server and any test can embed it. Its import rules are rows of the table in
// internal/layers (rules.go).
package slackfake
