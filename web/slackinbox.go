package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

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
