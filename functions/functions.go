// Package functions holds the Pub/Sub-triggered handlers, Dispatch (tasks topic) and Advance
// (events topic), as HTTP handlers for push subscriptions: on GCP they run as Cloud Run
// services fed by push subscriptions that Terraform owns, because Eventarc-owned
// subscriptions can't carry our retry and dead-letter settings. They are thin: decode the
// push envelope, call the same code the local stack runs, and answer so Pub/Sub acks (2xx)
// or redelivers (anything else).
package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/updraft-dev/updraft/scheduler"
)

// PushEnvelope is the body of a Pub/Sub push request.
type PushEnvelope struct {
	Message struct {
		Data       []byte            `json:"data"` // base64 in JSON; decoded by encoding/json
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// maxBody bounds a push request body; Pub/Sub messages are at most 10 MB.
const maxBody = 10 << 20

// DecodePush reads a push envelope and returns its message data.
func DecodePush(r *http.Request) ([]byte, string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, "", fmt.Errorf("%w: read push body: %v", scheduler.ErrBadMessage, err)
	}
	var env PushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, "", fmt.Errorf("%w: push body is not a Pub/Sub envelope: %v", scheduler.ErrBadMessage, err)
	}
	if len(env.Message.Data) == 0 {
		return nil, env.Message.MessageID, fmt.Errorf("%w: push message %q has no data", scheduler.ErrBadMessage, env.Message.MessageID)
	}
	return env.Message.Data, env.Message.MessageID, nil
}

// Handle is what a function does with one message's data.
type Handle func(ctx context.Context, data []byte) error

// Push wraps a handler for a push subscription: messages that can never be handled are
// acknowledged (204) and logged; other failures answer 500 so Pub/Sub redelivers them with
// the subscription's retry policy, and dead-letters them after its maximum attempts.
func Push(name string, h Handle, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a Pub/Sub push envelope", http.StatusMethodNotAllowed)
			return
		}
		data, id, err := DecodePush(r)
		if err == nil {
			err = h(r.Context(), data)
		}
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, scheduler.ErrBadMessage):
			log.Error("dropping a message that can never be handled", "function", name, "message_id", id, "error", err)
			w.WriteHeader(http.StatusNoContent)
		default:
			log.Warn("message failed; Pub/Sub will redeliver it", "function", name, "message_id", id, "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}
