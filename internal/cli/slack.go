package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
	"github.com/updraft-dev/updraft/internal/web"
)

// cmdSlackInbox prints what the local fake Slack received: what would have been posted.
func cmdSlackInbox(ctx context.Context, a *App, args []string) error {
	b, err := a.backend()
	if err != nil {
		return err
	}
	url := ""
	for _, kv := range b.Env {
		if v, ok := strings.CutPrefix(kv, slackpost.EnvSlackAPIURL+"="); ok {
			url = v
		}
	}
	if url == "" {
		url = a.Getenv(slackpost.EnvSlackAPIURL) // a fake Slack named by hand
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
	var msgs []web.SlackMessage
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return fmt.Errorf("read the fake Slack's messages: %w", err)
	}
	if len(msgs) == 0 {
		fmt.Fprintln(a.Stdout, "nothing posted yet")
	}
	// Each message's time is in the timezone of the DAG it is about, named; UTC otherwise.
	zones := map[string]*time.Location{}
	var st *fsstore.Store // opened for the first message about a DAG
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	zoneOf := func(dagID string) *time.Location {
		if dagID == "" {
			return time.UTC
		}
		if loc, ok := zones[dagID]; ok {
			return loc
		}
		zones[dagID] = time.UTC
		if st == nil {
			if st, _, err = a.openStore(ctx); err != nil {
				st = nil
				return time.UTC
			}
		}
		if d, err := st.GetDAG(ctx, dagID); err == nil {
			if loc, err := time.LoadLocation(zoneName(d.Rec.Timezone)); err == nil {
				zones[dagID] = loc
			}
		}
		return zones[dagID]
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
		loc := zoneOf(web.MessageDAG(m))
		fmt.Fprintf(a.Stdout, "── %s (%s) %s (ts %s)%s\n%s\n", m.Time.In(loc).Format(time.DateTime+" MST"), loc, ch, m.TS, thread, strings.TrimSpace(m.Text))
		if m.Blocks != nil {
			fmt.Fprintf(a.Stdout, "   blocks: %s\n", shorten(jsonText(m.Blocks, false), 300))
		}
	}
	return nil
}
