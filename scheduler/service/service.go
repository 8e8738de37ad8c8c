// Package service is the scheduler's HTTP surface: POST /tick (called by Cloud Scheduler on
// GCP and by the local ticker's equivalent), GET /healthz, GET /api/status, GET /metrics and,
// when set up, POST /slack/actions (Slack's interactivity requests: the alerts' Retry
// button). It holds no logic: it calls the engine and reports.
package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/updraft-dev/updraft/engine"
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
	// out.
	SlackActions http.Handler
}

// Mux returns the routes.
func (h *Handler) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.Status())
	})
	mux.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		rep, err := h.Tick(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "tick_failed", "message": err.Error()}})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
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
