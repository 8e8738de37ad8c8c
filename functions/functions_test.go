package functions

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/updraft-dev/updraft/scheduler"
)

func push(t *testing.T, h http.Handler, body string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(body)))
	return rec.Code
}

func TestPushAcksHandledAndBadMessagesAndRetriesFailures(t *testing.T) {
	var got []string
	h := Push("test", func(_ context.Context, data []byte) error {
		got = append(got, string(data))
		switch string(data) {
		case "bad":
			return scheduler.ErrBadMessage
		case "flaky":
			return errors.New("firestore unavailable")
		}
		return nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	env := func(data string) string {
		return `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(data)) + `","messageId":"1"},"subscription":"projects/p/subscriptions/s"}`
	}
	cases := []struct {
		body string
		want int
	}{
		{env("ok"), http.StatusNoContent},
		{env("bad"), http.StatusNoContent},             // never redelivered
		{env("flaky"), http.StatusInternalServerError}, // redelivered
		{"not json", http.StatusNoContent},             // a broken envelope is dropped, not retried forever
		{`{"message":{}}`, http.StatusNoContent},
	}
	for _, c := range cases {
		if code := push(t, h, c.body); code != c.want {
			t.Errorf("push %q → %d; want %d", c.body, code, c.want)
		}
	}
	if len(got) != 3 {
		t.Fatalf("handler saw %v; want the 3 well-formed messages", got)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET → %d", rec.Code)
	}
}
