package service

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/auth/authtest"
	"github.com/updraft-dev/updraft/internal/engine"
)

func TestSlackActionsIsMountedOnlyWhenSet(t *testing.T) {
	post := func(h *Handler) int {
		rec := httptest.NewRecorder()
		h.Mux().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/slack/actions", nil))
		return rec.Code
	}
	if code := post(&Handler{}); code != http.StatusNotFound {
		t.Fatalf("without a SlackActions handler: %d; want 404", code)
	}
	called := false
	h := &Handler{SlackActions: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { called = true; w.WriteHeader(http.StatusTeapot) })}
	if code := post(h); code != http.StatusTeapot || !called {
		t.Fatalf("with one: %d (called %v); want it to answer", code, called)
	}
}

func TestGuardCoversAllButHealthAndSlack(t *testing.T) {
	const audience, invoker = "https://updraft-scheduler.example.run.app", "tick@acme.iam.gserviceaccount.com"
	keys := authtest.New(t)
	inv, err := auth.NewInvokers(context.Background(), auth.InvokersConfig{Audience: audience, Allowed: []string{invoker}},
		slog.New(slog.DiscardHandler), keys.ClientOption())
	if err != nil {
		t.Fatal(err)
	}
	ticks := 0
	h := &Handler{
		Tick:         func(context.Context) (engine.TickReport, error) { ticks++; return engine.TickReport{}, nil },
		Status:       func() any { return "fine" },
		Counters:     func() map[string]float64 { return nil },
		SlackActions: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		Guard:        inv.Middleware,
	}
	mux := h.Mux()
	do := func(method, path, token string) int {
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	good := keys.IDToken(authtest.ServiceAccount(audience, invoker))
	other := keys.IDToken(authtest.ServiceAccount(audience, "someone@acme.iam.gserviceaccount.com"))
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "/tick", "", http.StatusUnauthorized},
		{"POST", "/tick", authtest.Unsigned(authtest.ServiceAccount(audience, invoker)), http.StatusUnauthorized},
		{"POST", "/tick", other, http.StatusForbidden},
		{"GET", "/api/status", "", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"POST", "/tick", good, http.StatusOK},
		{"GET", "/healthz", "", http.StatusOK},
		{"POST", "/slack/actions", "", http.StatusTeapot},
	} {
		if got := do(tc.method, tc.path, tc.token); got != tc.want {
			t.Errorf("%s %s (token %t): %d; want %d", tc.method, tc.path, tc.token != "", got, tc.want)
		}
	}
	if ticks != 1 {
		t.Errorf("ticked %d times; want once, for the allowed invoker only", ticks)
	}
}
