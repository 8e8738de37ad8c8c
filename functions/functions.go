// Package functions holds the Pub/Sub-triggered handlers and the Slack actions hook, written
// for the Functions Framework and deployed as Cloud Run services fed by push subscriptions
// that Terraform owns (Eventarc-owned subscriptions can't carry our retry and dead-letter
// settings):
//
//   - Dispatch (subscription updraft-tasks-dispatch): a task message's inline types run right
//     here, in the worker code, under the same attempt rules as a worker (claim, lease,
//     result); container types that fit the warm runner service (a timeout of at most 9
//     minutes, one attempt's share of a runner instance, not `executor: job`) are published
//     to its topic (runjobs.Runner), whose push subscription runs them inside a request of
//     the runner (worker.RunRunner); the others, and any task with `executor: job`, start an
//     execution of the worker Cloud Run job of the task's resource class or shape (package
//     runjobs). Both at most once per live start (engine.StartContainer).
//   - Advance (updraft-events-advance): a task event's fast-follow (engine.HandleEvent).
//   - Alerts (updraft-events-alerts): the Slack alerts of a task event (alerts.Alerter).
//   - SlackActions: the alerts' Retry button (Slack's interactivity Request URL).
//
// The Pub/Sub handlers are thin: decode the message, whichever shape it came in (a Pub/Sub
// push envelope, or a CloudEvent in binary or structured mode carrying MessagePublishedData),
// call the same code the local stack runs, and answer so Pub/Sub acknowledges (2xx) or
// redelivers (anything else): a message that can never be handled is acknowledged with 204
// and logged, any other failure answers 500. docs/functions.md has the table.
//
// NewHandler builds one target's handler from the environment, for an entry point to wrap
// (authentication) and serve; cmd/updraft-functions does. Package functions/declared
// registers the same targets by name with the Functions Framework, built on first request.
// This package registers nothing itself.
package functions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/updraft-dev/updraft/scheduler"
)

// PushEnvelope is the body of a Pub/Sub push request, and the MessagePublishedData a
// Pub/Sub CloudEvent carries: the same JSON.
type PushEnvelope struct {
	Message struct {
		Data       []byte            `json:"data"` // base64 in JSON; decoded by encoding/json
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
		// MessageIDSnake is the same id under the name push requests also use.
		MessageIDSnake string `json:"message_id"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// Message is one Pub/Sub message as a function receives it.
type Message struct {
	Data       []byte
	Attributes map[string]string
	// ID is the Pub/Sub message id (for logs).
	ID string
}

// maxBody bounds a request body; Pub/Sub messages are at most 10 MB (and base64 grows them).
const maxBody = 16 << 20

// DecodeMessage reads the Pub/Sub message of a request in any of the shapes a push
// subscription or Eventarc sends: a push envelope (`{"message":{"data":…},"subscription":…}`),
// a CloudEvent in binary mode (`ce-*` headers, the MessagePublishedData as the body), or a
// CloudEvent in structured mode (content type application/cloudevents+json, the
// MessagePublishedData in `data`, or base64 in `data_base64`). Anything else, or a message
// without data, is an error wrapping scheduler.ErrBadMessage.
func DecodeMessage(r *http.Request) (Message, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Message{}, fmt.Errorf("%w: read the request body: %v", scheduler.ErrBadMessage, err)
	}
	shape := "push envelope"
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case ct == "application/cloudevents+json":
		shape = "structured CloudEvent"
		var ce struct {
			SpecVersion string          `json:"specversion"`
			ID          string          `json:"id"`
			Data        json.RawMessage `json:"data"`
			DataBase64  []byte          `json:"data_base64"`
		}
		if err := json.Unmarshal(body, &ce); err != nil {
			return Message{}, fmt.Errorf("%w: body is not a %s: %v", scheduler.ErrBadMessage, shape, err)
		}
		if ce.SpecVersion == "" {
			return Message{}, fmt.Errorf("%w: %s has no specversion", scheduler.ErrBadMessage, shape)
		}
		switch {
		case len(ce.Data) > 0 && !bytes.Equal(ce.Data, []byte("null")):
			body = ce.Data
		default:
			body = ce.DataBase64
		}
	case r.Header.Get("Ce-Specversion") != "":
		shape = "binary CloudEvent"
	}
	var env PushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Message{}, fmt.Errorf("%w: body is not a %s of a Pub/Sub message: %v", scheduler.ErrBadMessage, shape, err)
	}
	m := Message{Data: env.Message.Data, Attributes: env.Message.Attributes, ID: env.Message.MessageID}
	if m.ID == "" {
		m.ID = env.Message.MessageIDSnake
	}
	if len(m.Data) == 0 {
		return m, fmt.Errorf("%w: %s message %q has no data", scheduler.ErrBadMessage, shape, m.ID)
	}
	return m, nil
}

// Handle is what a function does with one message's data.
type Handle func(ctx context.Context, data []byte) error

// Push wraps a handler for a push subscription: messages that can never be handled are
// acknowledged (204) and logged; other failures answer 500 so Pub/Sub redelivers them with
// the subscription's retry policy, and dead-letters them after its maximum attempts.
func Push(name string, h Handle, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a Pub/Sub push envelope or a CloudEvent", http.StatusMethodNotAllowed)
			return
		}
		m, err := DecodeMessage(r)
		if err == nil {
			err = h(r.Context(), m.Data)
		}
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, scheduler.ErrBadMessage):
			log.Error("dropping a message that can never be handled", "function", name, "message_id", m.ID, "error", err)
			w.WriteHeader(http.StatusNoContent)
		default:
			log.Warn("message failed; Pub/Sub will redeliver it", "function", name, "message_id", m.ID, "error", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}
