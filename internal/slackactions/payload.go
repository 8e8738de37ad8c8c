package slackactions

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ActionRetry is the action_id of an alert's Retry button. Its value is the JSON of a
// RetryValue.
const ActionRetry = "updraft_retry"

// ErrBadRequest is what every malformed interactivity request wraps: answered 400.
var ErrBadRequest = errors.New("bad Slack interactivity request")

// Payload is the part of Slack's block_actions payload the handler reads.
type Payload struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		Type        string `json:"type"`
		MessageTS   string `json:"message_ts"`
		ChannelID   string `json:"channel_id"`
		IsEphemeral bool   `json:"is_ephemeral"`
	} `json:"container"`
	// Message is the message the button is on (absent for buttons in modals).
	Message *struct {
		TS     string            `json:"ts"`
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	} `json:"message"`
	ResponseURL string   `json:"response_url"`
	Actions     []Action `json:"actions"`
}

// Action is one clicked element.
type Action struct {
	ActionID string `json:"action_id"`
	BlockID  string `json:"block_id"`
	Value    string `json:"value"`
	ActionTS string `json:"action_ts"`
}

// RetryValue is the Retry button's value: the task to clear with its downstream.
type RetryValue struct {
	DagID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
}

// ChannelID is the channel the message is in.
func (p *Payload) ChannelID() string {
	if p.Channel.ID != "" {
		return p.Channel.ID
	}
	return p.Container.ChannelID
}

// ParsePayload reads a request body, application/x-www-form-urlencoded `payload=<JSON>`.
// Its errors wrap ErrBadRequest.
func ParsePayload(body []byte) (*Payload, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: the body is not a form: %v", ErrBadRequest, err)
	}
	raw := form.Get("payload")
	if raw == "" {
		return nil, fmt.Errorf("%w: the form has no payload field", ErrBadRequest)
	}
	var p Payload
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, fmt.Errorf("%w: the payload is not JSON: %v", ErrBadRequest, err)
	}
	if p.Type != "block_actions" {
		return nil, fmt.Errorf("%w: payload type %q is not handled (only block_actions)", ErrBadRequest, p.Type)
	}
	if p.User.ID == "" {
		return nil, fmt.Errorf("%w: the payload names no user", ErrBadRequest)
	}
	return &p, nil
}

// ActionViewLog is the action_id of the alerts' View log link button.
const ActionViewLog = "updraft_view_log"

// OnlyLinks reports whether every action of the payload is a View log link click, which
// needs nothing done.
func (p *Payload) OnlyLinks() bool {
	for _, a := range p.Actions {
		if a.ActionID != ActionViewLog {
			return false
		}
	}
	return len(p.Actions) > 0
}

// Retry returns the Retry button's value, or an error wrapping ErrBadRequest when the
// payload holds no Retry click (another action_id) or its value is malformed.
func (p *Payload) Retry() (RetryValue, error) {
	var ids []string
	for _, a := range p.Actions {
		if a.ActionID != ActionRetry {
			ids = append(ids, a.ActionID)
			continue
		}
		var v RetryValue
		if err := json.Unmarshal([]byte(a.Value), &v); err != nil {
			return v, fmt.Errorf("%w: the %s button's value is not JSON: %v", ErrBadRequest, ActionRetry, err)
		}
		if v.DagID == "" || v.RunID == "" || v.TaskID == "" {
			return v, fmt.Errorf("%w: the %s button's value lacks dag_id, run_id or task_id: %s", ErrBadRequest, ActionRetry, a.Value)
		}
		return v, nil
	}
	return RetryValue{}, fmt.Errorf("%w: unknown action_id %s (this endpoint handles %s)", ErrBadRequest, strings.Join(ids, ", "), ActionRetry)
}
