package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// dagLink finds a DAG in a link to one of its runs (alerts link every message to its run or
// task page: UI/dags/DAG/runs/RUN).
var dagLink = regexp.MustCompile(`/dags/([^/"?#|<>\s\\]+)/runs/`)

// MessageDAG is the DAG a Slack message is about: the first DAG its text, blocks or
// attachments link a run of, or "" (a message that names no run, such as a digest of
// several DAGs' failures or a slack.post task's own text). The inbox shows a message's time
// in that DAG's timezone, else in UTC.
func MessageDAG(m SlackMessage) string {
	b, _ := json.Marshal([]any{m.Text, m.Blocks, m.Attachments})
	var ids []string
	for _, g := range dagLink.FindAllStringSubmatch(string(b), -1) {
		id, err := url.PathUnescape(g[1])
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ""
	}
	for _, id := range ids[1:] {
		if id != ids[0] { // a digest: several DAGs, no one zone
			return ""
		}
	}
	return ids[0]
}

// FakeSlackInbox reads the messages the local fake Slack (emulators/slack) at baseURL
// recorded, from its GET /_messages, for Config.SlackInbox.
func FakeSlackInbox(baseURL string) func(ctx context.Context) ([]SlackMessage, error) {
	url := strings.TrimRight(baseURL, "/") + "/_messages"
	return func(ctx context.Context) ([]SlackMessage, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("web: the fake Slack answered %s", resp.Status)
		}
		var msgs []SlackMessage
		if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
			return nil, fmt.Errorf("web: read the fake Slack's messages: %w", err)
		}
		return msgs, nil
	}
}
