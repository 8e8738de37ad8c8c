// Package slackapi is what every Slack caller in Updraft shares (the slack.post task type,
// the alerts, the Retry button's handler): where the Web API is, and how a slack-go client
// is made. It imports slack-go and nothing of Updraft.
package slackapi

import (
	"net/http"
	"strings"

	"github.com/slack-go/slack"
)

// EnvAPIURL points every Slack caller at another Slack Web API than Slack's: the base URL of
// the local fake (emulators/slack), e.g. http://127.0.0.1:PORT. Unset, Slack's own is used.
const EnvAPIURL = "UPDRAFT_SLACK_API_URL"

// APIURL turns a Slack Web API base URL (with or without /api) into slack-go's API URL,
// which ends in "/api/"; "" stays "" (Slack's own).
func APIURL(base string) string {
	v := strings.TrimRight(strings.TrimSpace(base), "/")
	if v == "" {
		return ""
	}
	if !strings.HasSuffix(v, "/api") {
		v += "/api"
	}
	return v + "/"
}

// New returns a slack-go client for a bot token, calling the Web API at base ("": Slack's
// own) through hc.
func New(token, base string, hc *http.Client) *slack.Client {
	opts := []slack.Option{slack.OptionHTTPClient(hc)}
	if u := APIURL(base); u != "" {
		opts = append(opts, slack.OptionAPIURL(u))
	}
	return slack.New(token, opts...)
}
