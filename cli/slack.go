package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/tasks"
)

// cmdSlackInbox prints what the local fake Slack received: what would have been posted.
func cmdSlackInbox(ctx context.Context, a *App, args []string) error {
	b, err := a.backend()
	if err != nil {
		return err
	}
	url := ""
	for _, kv := range b.Env {
		if v, ok := strings.CutPrefix(kv, tasks.EnvSlackAPIURL+"="); ok {
			url = v
		}
	}
	if url == "" {
		return fmt.Errorf("no fake Slack here: `updraft slack inbox` shows what `make dev` would have posted")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_messages", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var msgs []struct {
		Channel, ChannelName, TS, ThreadTS, Text string
		Blocks, Attachments                      any
		Updated                                  int
		Time                                     time.Time
	}
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return fmt.Errorf("read the fake Slack's messages: %w", err)
	}
	if len(msgs) == 0 {
		fmt.Fprintln(a.Stdout, "nothing posted yet")
	}
	for _, m := range msgs {
		ch := m.Channel
		if m.ChannelName != "" {
			ch = "#" + m.ChannelName
		}
		thread := ""
		if m.ThreadTS != "" {
			thread = " ↳ in thread " + m.ThreadTS
		}
		fmt.Fprintf(a.Stdout, "── %s %s (ts %s)%s\n%s\n", m.Time.Local().Format(time.DateTime+" MST"), ch, m.TS, thread, strings.TrimSpace(m.Text))
		if m.Blocks != nil {
			fmt.Fprintf(a.Stdout, "   blocks: %s\n", shorten(jsonText(m.Blocks, false), 300))
		}
	}
	return nil
}
