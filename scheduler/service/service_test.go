package service

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
