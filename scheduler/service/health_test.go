package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthzReportsEachComponentAndTurnsRed(t *testing.T) {
	var queueErr error
	h := &Handler{Probes: map[string]Probe{
		"store": func(context.Context) error { return nil },
		"queue": func(context.Context) error { return queueErr },
	}}
	get := func(path string) (int, map[string]string) {
		rec := httptest.NewRecorder()
		h.Mux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]string
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, body := get("/healthz"); code != http.StatusOK || body["store"] != "ok" || body["queue"] != "ok" || len(body) != 2 {
		t.Fatalf("well: %d %v; want 200 {store: ok, queue: ok}", code, body)
	}
	queueErr = errors.New("Pub/Sub emulator at 127.0.0.1:1 did not answer within 2s")
	for _, path := range []string{"/healthz", "/health"} {
		if code, body := get(path); code != http.StatusServiceUnavailable || body["store"] != "ok" || body["queue"] != queueErr.Error() {
			t.Errorf("queue down, %s: %d %v; want 503 with the queue's reason", path, code, body)
		}
	}
	// Liveness never asks the backends.
	rec := httptest.NewRecorder()
	h.Mux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/live", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/health/live with the queue down: %d; want 200", rec.Code)
	}
}

func TestHealthBoundsASlowProbe(t *testing.T) {
	res, ok := Health(context.Background(), map[string]Probe{
		"store": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
	})
	if ok || res["store"] != context.DeadlineExceeded.Error() {
		t.Fatalf("a probe that never answers: %v %v; want not ok, with the deadline as reason", res, ok)
	}
}
