package slackpost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/slackapi"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// EnvSlackAPIURL points slack.post at another Slack Web API than Slack's (slackapi.EnvAPIURL).
const EnvSlackAPIURL = slackapi.EnvAPIURL

// slackDefaultConn is the connection slack.post takes its bot token from (Airflow's
// slack_api_default).
const slackDefaultConn = "slack"

// slackCallTimeout bounds one Web API call, so a hung Slack never holds the dispatcher.
const slackCallTimeout = 30 * time.Second

// SlackPost is the `slack.post` task type (Airflow's SlackAPIPostOperator): one message, by
// chat.postMessage, with the bot token of a connection. It runs inline.
//
//	with:
//	  channel: "#data-alerts"       # a name or an ID
//	  text: "Usage for {{ .ds }}"   # text, blocks and/or attachments
//	  blocks: [{type: section, text: {type: mrkdwn, text: "*hi*"}}]   # or a JSON string
//	  attachments: [{color: danger, text: "1 failed"}]                 # or a JSON string
//	  thread_ts: '{{ (xcom "announce").ts }}'   # reply in a thread
//	  connection: slack             # default; the bot token is its password
//
// Its XCom is {"channel": "C…", "ts": "1700000000.000100"}.
func SlackPost() taskrun.Type {
	return taskrun.Type{Name: "slack.post", Inline: true, Run: runSlackPost, Check: checkSlackPost}
}

var slackPostArgs = []string{"channel", "text", "blocks", "attachments", "thread_ts", "connection"}

func checkSlackPost(with map[string]any) []dag.ArgProblem {
	var ps []dag.ArgProblem
	ps = append(ps, taskrun.UnknownArgs(with, slackPostArgs)...)
	if s, ok := with["channel"].(string); !ok || strings.TrimSpace(s) == "" {
		ps = append(ps, dag.ArgProblem{Arg: "channel", Msg: "a slack.post task needs with.channel",
			Hint: `channel: "#data-alerts" (quote it: YAML reads # as a comment)`})
	}
	for _, k := range []string{"text", "connection"} {
		if v, ok := with[k]; ok {
			if _, isStr := v.(string); !isStr {
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("%s must be a string, not %v", k, v)})
			}
		}
	}
	if v, ok := with["thread_ts"]; ok {
		if _, isStr := v.(string); !isStr {
			ps = append(ps, dag.ArgProblem{Arg: "thread_ts", Msg: fmt.Sprintf("thread_ts must be a string, not %v", v),
				Hint: `quote it (a number loses digits): thread_ts: "1700000000.000100", or thread_ts: '{{ (xcom "announce").ts }}'`})
		}
	}
	if v, ok := with["blocks"]; ok {
		if _, err := slackBlocks(v, true); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "blocks", Msg: err.Error(),
				Hint: "blocks: [{type: section, text: {type: mrkdwn, text: \"*Done*\"}}], or a JSON string of them (Block Kit Builder's JSON works)"})
		}
	}
	if v, ok := with["attachments"]; ok {
		if _, err := slackAttachments(v, true); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "attachments", Msg: err.Error(), Hint: "attachments: [{color: danger, text: \"1 task failed\"}]"})
		}
	}
	if slackEmpty(with["text"]) && slackEmpty(with["blocks"]) && slackEmpty(with["attachments"]) {
		ps = append(ps, dag.ArgProblem{Arg: "text", Msg: "a slack.post task needs text, blocks or attachments",
			Hint: `text: "Loaded {{ .ds }}"`})
	}
	return ps
}

// slackEmpty reports whether a message part is absent or empty.
func slackEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []any:
		return len(x) == 0
	}
	return false
}

// slackTemplate reports whether a value is still a template (at check time).
func slackTemplate(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "{{")
}

// slackBlocks turns blocks (a list of Block Kit objects, or JSON text of a list, or of
// Block Kit Builder's {"blocks": [...]}) into slack-go blocks that keep their JSON as given.
// With checking, templates are accepted unread.
func slackBlocks(v any, checking bool) ([]slack.Block, error) {
	items, err := slackList(v, "blocks", checking)
	if err != nil || items == nil {
		return nil, err
	}
	if err := reservedSlackIDs(items, "blocks"); err != nil {
		return nil, err
	}
	out := make([]slack.Block, 0, len(items))
	for i, it := range items {
		if checking && slackTemplate(it) {
			continue
		}
		if s, ok := it.(string); ok { // one block as JSON text
			var obj any
			if err := json.Unmarshal([]byte(s), &obj); err != nil {
				return nil, fmt.Errorf("blocks[%d] is not a Block Kit object: %v", i, err)
			}
			it = obj
		}
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("blocks[%d] must be a Block Kit object (a mapping with a type), not %v", i, it)
		}
		if t, _ := obj["type"].(string); t == "" {
			return nil, fmt.Errorf("blocks[%d] has no type (section, header, divider, context, …)", i)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("blocks[%d]: %v", i, err)
		}
		blk, err := slack.BlockFromJSON(string(b))
		if err != nil {
			return nil, fmt.Errorf("blocks[%d]: %v", i, err)
		}
		out = append(out, blk)
	}
	return out, nil
}

// slackAttachments turns attachments (a list of objects, or JSON text of one) into slack-go's.
func slackAttachments(v any, checking bool) ([]slack.Attachment, error) {
	items, err := slackList(v, "attachments", checking)
	if err != nil || items == nil {
		return nil, err
	}
	if err := reservedSlackIDs(items, "attachments"); err != nil {
		return nil, err
	}
	out := make([]slack.Attachment, 0, len(items))
	for i, it := range items {
		if checking && slackTemplate(it) {
			continue
		}
		if _, ok := it.(map[string]any); !ok {
			return nil, fmt.Errorf("attachments[%d] must be a mapping (color, text, fields, …), not %v", i, it)
		}
		b, err := json.Marshal(it)
		if err != nil {
			return nil, fmt.Errorf("attachments[%d]: %v", i, err)
		}
		var a slack.Attachment
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("attachments[%d] is not a Slack attachment: %v", i, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// slackList reads a list given as a YAML list or as JSON text. It returns nil, nil for nothing
// to send (and, checking, for a template).
func slackList(v any, name string, checking bool) ([]any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	case map[string]any: // Block Kit Builder's {"blocks": [...]} pasted as YAML
		if inner, ok := x[name].([]any); ok {
			return inner, nil
		}
	case string:
		if strings.TrimSpace(x) == "" || (checking && slackTemplate(x)) {
			return nil, nil
		}
		var parsed any
		if err := json.Unmarshal([]byte(x), &parsed); err != nil {
			return nil, fmt.Errorf("%s is a string but not JSON: %v", name, err)
		}
		if obj, ok := parsed.(map[string]any); ok { // Block Kit Builder: {"blocks": [...]}
			if inner, ok := obj[name].([]any); ok {
				return inner, nil
			}
		}
		list, ok := parsed.([]any)
		if !ok {
			return nil, fmt.Errorf("%s must be a list (or JSON text of a list)", name)
		}
		return list, nil
	}
	return nil, fmt.Errorf("%s must be a list, or JSON text of a list, not %v", name, v)
}

func runSlackPost(ctx context.Context, tc *taskrun.Context) engine.Result {
	a := tc.Args
	channel, _ := a["channel"].(string)
	channel = strings.TrimSpace(channel)
	if channel == "" {
		return taskrun.Final("slack.post: with.channel is empty (after rendering)")
	}
	text, _ := a["text"].(string)
	threadTS, _ := a["thread_ts"].(string)
	threadTS = strings.TrimSpace(threadTS)
	blocks, err := slackBlocks(a["blocks"], false)
	if err != nil {
		return taskrun.Final("slack.post: " + err.Error())
	}
	attachments, err := slackAttachments(a["attachments"], false)
	if err != nil {
		return taskrun.Final("slack.post: " + err.Error())
	}
	if strings.TrimSpace(text) == "" && len(blocks) == 0 && len(attachments) == 0 {
		return taskrun.Final("slack.post: nothing to post: text, blocks and attachments are all empty (after rendering)")
	}
	connID, _ := a["connection"].(string)
	if connID == "" {
		connID = slackDefaultConn
	}
	conn, err := tc.Secrets.Conn(ctx, connID)
	if err != nil {
		return taskrun.Final(fmt.Sprintf("slack.post: %v (the bot token is the password of connection %q, secret updraft-connections-%s)", err, connID, connID))
	}
	if conn.Password == "" {
		return taskrun.Final(fmt.Sprintf("slack.post: connection %q has no password: put the bot token (xoxb-…) there", connID))
	}

	base := ""
	if tc.Getenv != nil {
		base = tc.Getenv(EnvSlackAPIURL)
	}
	client := slackapi.New(conn.Password, base, &http.Client{Timeout: slackCallTimeout})

	// Text goes as written (no escaping), so <@U…> mentions and <url|label> links work.
	msg := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if len(blocks) > 0 {
		msg = append(msg, slack.MsgOptionBlocks(blocks...))
	}
	if len(attachments) > 0 {
		msg = append(msg, slack.MsgOptionAttachments(attachments...))
	}
	if threadTS != "" {
		msg = append(msg, slack.MsgOptionTS(threadTS))
	}
	where := channel
	if threadTS != "" {
		where += " (thread " + threadTS + ")"
	}
	tc.Log.Info(fmt.Sprintf("posting to %s: %d characters of text, %d blocks, %d attachments", where, len(text), len(blocks), len(attachments)))
	chID, ts, err := client.PostMessageContext(ctx, channel, msg...)
	if err != nil {
		return slackFailure(ctx, err, channel, connID)
	}
	tc.Log.Info(fmt.Sprintf("posted message %s in channel %s", ts, chID))
	x, _ := json.Marshal(map[string]string{"channel": chID, "ts": ts})
	return engine.Result{State: scheduler.AttemptSuccess, XCom: x}
}

// slackFinal are Slack error codes that another try cannot fix: the DAG or the connection is
// wrong. Each maps to a hint.
var slackFinal = map[string]string{
	"channel_not_found":     "check the channel name or ID, and that the bot can see it (private channels: invite it)",
	"not_in_channel":        "invite the bot to the channel (/invite @your-bot)",
	"is_archived":           "the channel is archived",
	"not_authed":            "the connection has no token",
	"invalid_auth":          "the bot token of connection %q is not valid",
	"account_inactive":      "the bot token of connection %q belongs to a deleted user or a removed app",
	"token_revoked":         "the bot token of connection %q was revoked",
	"token_expired":         "the bot token of connection %q expired",
	"missing_scope":         "the bot token lacks the chat:write scope",
	"no_text":               "give text, blocks or attachments",
	"invalid_blocks":        "Slack rejected the blocks: check them in Block Kit Builder",
	"invalid_blocks_format": "blocks must be a list of Block Kit objects",
	"invalid_attachments":   "Slack rejected the attachments",
	"msg_too_long":          "the text is over Slack's 40,000 characters",
	"too_many_attachments":  "Slack takes at most 100 attachments",
	"restricted_action":     "the workspace does not let the bot post in this channel",
}

// slackFailure turns a slack-go error into the attempt's failure. Rate limits and outages are
// retryable (the task's retries apply); configuration errors are final.
func slackFailure(ctx context.Context, err error, channel, connID string) engine.Result {
	var rl *slack.RateLimitedError
	var api slack.SlackErrorResponse
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &rl):
		secs := int64(math.Ceil(rl.RetryAfter.Seconds()))
		return taskrun.Failed(nil, fmt.Sprintf("slack: rate limited, retry after %ds", secs))
	case errors.As(err, &api):
		msg := "slack: " + api.Err
		if api.Err == "missing_scope" && api.Needed != "" {
			return taskrun.Final(fmt.Sprintf("%s: the bot token lacks the %s scope", msg, api.Needed))
		}
		if hint, ok := slackFinal[api.Err]; ok {
			if strings.Contains(hint, "%q") {
				hint = fmt.Sprintf(hint, connID)
			}
			return taskrun.Final(fmt.Sprintf("%s (posting to %s): %s", msg, channel, hint))
		}
		return taskrun.Failed(nil, fmt.Sprintf("%s (posting to %s)", msg, channel))
	case errors.As(err, &sc):
		return taskrun.Failed(nil, fmt.Sprintf("slack: HTTP %s (posting to %s)", sc.Status, channel))
	case ctx.Err() != nil:
		return taskrun.Failed(nil, fmt.Sprintf("slack: %v (posting to %s)", context.Cause(ctx), channel))
	}
	return taskrun.Failed(nil, fmt.Sprintf("slack: %v (posting to %s)", err, channel))
}
