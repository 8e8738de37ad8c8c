// Package service is the scheduler's HTTP surface: POST /tick (called by Cloud Scheduler on
// GCP and by the local ticker's equivalent), GET /healthz (the store's and the queue's
// health; GET /health/live for liveness only), GET /api/status, GET /metrics and,
// when set up, POST /slack/actions (Slack's interactivity requests: the alerts' Retry
// button). It holds no logic: it calls the engine and reports.
package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/updraft-dev/updraft/internal/engine"
)

// Handler serves the scheduler's endpoints.
type Handler struct {
	// Tick runs one tick.
	Tick func(ctx context.Context) (engine.TickReport, error)
	// Status returns a JSON-encodable status.
	Status func() any
	// Counters returns metric name → value for /metrics (Prometheus text format).
	Counters func() map[string]float64
	// SlackActions serves POST /slack/actions (package slackactions); nil leaves the route
	// out. It is never behind Guard: Slack can't send an OIDC token, and the handler checks
	// Slack's request signature itself.
	SlackActions http.Handler
	// Probes are what GET /healthz checks (component name → probe), typically "store" and
	// "queue"; none: /healthz only says the process serves HTTP.
	Probes map[string]Probe
	// Guard, when set, wraps every route but the health routes and /slack/actions: on GCP, the check
	// that a request carries a Google OIDC token from an allowed invoker (package auth).
	Guard func(http.Handler) http.Handler
}

// Mux returns the routes.
func (h *Handler) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	guarded := mux
	if h.Guard != nil {
		guarded = http.NewServeMux()
		mux.Handle("/", h.Guard(guarded))
	}
	h.healthRoutes(mux)
	guarded.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.Status())
	})
	guarded.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		rep, err := h.Tick(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "tick_failed", "message": err.Error()}})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	guarded.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		c := h.Counters()
		names := make([]string, 0, len(c))
		for k := range c {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "%s %g\n", k, c[k])
		}
	})
	if h.SlackActions != nil {
		mux.Handle("POST /slack/actions", h.SlackActions)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
