package taskrun

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

type fakeConns map[string]Connection

func (f fakeConns) Secret(context.Context, string) (string, error) { return "", io.EOF }
func (f fakeConns) Conn(_ context.Context, id string) (Connection, error) {
	c, ok := f[id]
	if !ok {
		return c, io.EOF
	}
	return c, nil
}

func httpContext(t *testing.T, args map[string]any) *Context {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "fetch", TryNumber: 1, AttemptID: "a1"}
	log, err := tasks.NewLogger(io.Discard, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &Context{Ref: ref, Args: args, Log: log, Getenv: allowLoopback,
		Secrets: fakeConns{"partner": {Host: "", Password: "tok-123456", Extra: map[string]any{"auth": "bearer"}}}}
}

func TestHTTPResponsesAndStatuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/orders":
			if r.URL.Query().Get("date") != "2025-01-01" || r.Header.Get("Accept") != "application/json" {
				http.Error(w, "bad request", 400)
				return
			}
			io.WriteString(w, `{"orders": [{"id": 1}, {"id": 2}]}`)
		case "/garbage":
			io.WriteString(w, "<html>maintenance</html>")
		case "/broken":
			http.Error(w, "upstream exploded", 500)
		case "/auth":
			if r.Header.Get("Authorization") != "Bearer tok-123456" {
				http.Error(w, "no", 401)
				return
			}
			io.WriteString(w, `"ok"`)
		case "/created":
			w.WriteHeader(201)
		}
	}))
	defer srv.Close()
	run := func(args map[string]any) (state scheduler.AttemptState, xcom, errMsg string) {
		res := runHTTP(context.Background(), httpContext(t, args))
		return res.State, string(res.XCom), res.Error
	}
	if s, x, e := run(map[string]any{"url": srv.URL + "/orders", "params": map[string]any{"date": "2025-01-01"},
		"headers": map[string]any{"Accept": "application/json"}}); s != scheduler.AttemptSuccess || x != `{"orders": [{"id": 1}, {"id": 2}]}` {
		t.Errorf("JSON: %s %s %s", s, x, e)
	}
	if s, x, _ := run(map[string]any{"url": srv.URL + "/garbage"}); s != scheduler.AttemptSuccess || x != `"\u003chtml\u003emaintenance\u003c/html\u003e"` {
		t.Errorf("text with response auto: %s %s", s, x)
	}
	if s, _, e := run(map[string]any{"url": srv.URL + "/garbage", "response": "json"}); s != scheduler.AttemptFailed || !strings.Contains(e, "not JSON") || !strings.Contains(e, "maintenance") {
		t.Errorf("garbage with response json: %s %s", s, e)
	}
	if s, _, e := run(map[string]any{"url": srv.URL + "/broken"}); s != scheduler.AttemptFailed || !strings.Contains(e, "500") || !strings.Contains(e, "upstream exploded") {
		t.Errorf("500: %s %s", s, e)
	}
	if s, _, e := run(map[string]any{"url": srv.URL + "/created", "method": "post", "json": map[string]any{"a": 1}, "expected_status": []any{201}}); s != scheduler.AttemptSuccess {
		t.Errorf("201 expected: %s %s", s, e)
	}
	if s, _, _ := run(map[string]any{"url": srv.URL + "/created", "expected_status": 200}); s != scheduler.AttemptFailed {
		t.Errorf("201 when 200 is expected: %s", s)
	}
	c := httpContext(t, map[string]any{"url": "/auth", "connection": "partner"})
	c.Secrets = fakeConns{"partner": {Host: srv.URL, Password: "tok-123456", Extra: map[string]any{"auth": "bearer"}}}
	if res := runHTTP(context.Background(), c); res.State != scheduler.AttemptSuccess {
		t.Errorf("bearer connection: %s %s", res.State, res.Error)
	}
	if s, _, e := run(map[string]any{"url": "/auth", "connection": "missing"}); s != scheduler.AttemptFailed || e == "" {
		t.Errorf("missing connection: %s %s", s, e)
	}
}

func TestHTTPCheck(t *testing.T) {
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{}, "url"},
		{map[string]any{"url": "x", "method": "FETCH"}, "method"},
		{map[string]any{"url": "x", "headers": "a"}, "headers"},
		{map[string]any{"url": "x", "body": "a", "json": map[string]any{}}, "json"},
		{map[string]any{"url": "x", "expected_status": "ok"}, "expected_status"},
		{map[string]any{"url": "x", "respone": "json"}, "respone"},
	}
	for _, c := range cases {
		ps := checkHTTP(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	if ps := checkHTTP(map[string]any{"url": "{{ var \"api\" }}/x", "method": "POST", "json": map[string]any{"a": "{{ .ds }}"}}); len(ps) != 0 {
		t.Errorf("templated args flagged: %+v", ps)
	}
}

// allowLoopback is the environment of tests whose servers listen on 127.0.0.1: the egress
// policy lets loopback through only when allow-listed, as the local stack does.
func allowLoopback(k string) string {
	if k == EnvHTTPAllow {
		return "loopback"
	}
	return ""
}
