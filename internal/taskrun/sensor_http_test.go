package taskrun

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// exportAPI is a stand-in for a partner's API whose export job the sensor waits for.
type exportAPI struct {
	mu     sync.Mutex
	status int
	body   string
	got    *http.Request
}

func (a *exportAPI) set(status int, body string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.body = status, body
}

func (a *exportAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = r.Clone(context.Background())
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (a *exportAPI) lastRequest() *http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got
}

// pokeHTTP runs one poke of a sensor.http task.
func pokeHTTP(t *testing.T, args map[string]any) (engine.Result, string) {
	t.Helper()
	return pokeHTTPVia(t, "", args)
}

// pokeHTTPVia runs one poke with the connection "partner" at host (a bearer token).
func pokeHTTPVia(t *testing.T, host string, args map[string]any) (engine.Result, string) {
	t.Helper()
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	tc, log := sensorContext(t, args, "UTC", now, now)
	tc.Secrets = fakeConns{"partner": {Host: host, Password: "tok-123456", Extra: map[string]any{"auth": "bearer"}}}
	return SensorHTTP().Run(context.Background(), tc), logMessages(t, log.String())
}

func TestSensorHTTPStatusThenJSONCondition(t *testing.T) {
	t.Parallel()
	api := &exportAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	args := func() map[string]any {
		return map[string]any{"url": srv.URL + "/exports", "params": map[string]any{"date": "2025-01-01"},
			"headers": map[string]any{"Accept": "application/json"}, "json_path": "data.0.state", "equals": "done"}
	}

	api.set(503, "warming up")
	res, log := pokeHTTP(t, args())
	if res.State != scheduler.AttemptReschedule || res.RescheduleAt != nil || res.Final {
		t.Fatalf("503: %+v; want up_for_reschedule at the poke interval", res)
	}
	if !strings.Contains(log, "503") || !strings.Contains(log, "not yet") || !strings.Contains(log, "warming up") {
		t.Errorf("the log does not say the status was not expected:\n%s", log)
	}
	r := api.lastRequest()
	if r.URL.Query().Get("date") != "2025-01-01" || r.Header.Get("Accept") != "application/json" || r.Method != "GET" {
		t.Errorf("request %s %s, headers %v", r.Method, r.URL, r.Header)
	}

	api.set(200, `{"data": [{"state": "running"}]}`)
	res, log = pokeHTTP(t, args())
	if res.State != scheduler.AttemptReschedule || len(res.XCom) != 0 {
		t.Fatalf("running: %+v", res)
	}
	if !strings.Contains(log, `data.0.state is "running", not "done"`) {
		t.Errorf("the log does not say which value it found:\n%s", log)
	}

	api.set(200, `{"data": []}`)
	if res, log = pokeHTTP(t, args()); res.State != scheduler.AttemptReschedule || !strings.Contains(log, "data.0.state is not in the body") {
		t.Fatalf("no element yet: %+v\n%s", res, log)
	}

	done := `{"data": [{"state": "done", "rows": 42}]}`
	api.set(200, done)
	if res, _ = pokeHTTP(t, args()); res.State != scheduler.AttemptSuccess || string(res.XCom) != done {
		t.Fatalf("done: %+v; want success with the body as XCom", res)
	}
}

func TestSensorHTTPConditions(t *testing.T) {
	t.Parallel()
	api := &exportAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cases := []struct {
		name   string
		status int
		body   string
		args   map[string]any
		ready  bool
	}{
		{"default 200", 200, "ok", map[string]any{}, true},
		{"default is 200 only", 204, "", map[string]any{}, false},
		{"404 until it exists", 404, "no such export", map[string]any{}, false},
		{"a listed status", 204, "", map[string]any{"expect_status": []any{int64(200), int64(204)}}, true},
		{"a single status", 202, "", map[string]any{"expect_status": int64(202)}, true},
		{"truthy true", 200, `{"ready": true}`, map[string]any{"json_path": "ready"}, true},
		{"truthy false", 200, `{"ready": false}`, map[string]any{"json_path": "ready"}, false},
		{"truthy null", 200, `{"ready": null}`, map[string]any{"json_path": "ready"}, false},
		{"truthy empty list", 200, `{"files": []}`, map[string]any{"json_path": "files"}, false},
		{"truthy list", 200, `{"files": ["a.csv"]}`, map[string]any{"json_path": "files"}, true},
		{"truthy zero", 200, `{"count": 0.0}`, map[string]any{"json_path": "count"}, false},
		{"truthy empty string", 200, `{"id": ""}`, map[string]any{"json_path": "id"}, false},
		{"truthy string", 200, `{"id": "x"}`, map[string]any{"json_path": "id"}, true},
		{"missing key", 200, `{"other": 1}`, map[string]any{"json_path": "ready"}, false},
		{"index past the end", 200, `[1, 2]`, map[string]any{"json_path": "2"}, false},
		{"index into a list at the top", 200, `[{"ok": 1}]`, map[string]any{"json_path": "0.ok"}, true},
		{"a number key of an object", 200, `{"0": "yes"}`, map[string]any{"json_path": "0"}, true},
		{"equals a number", 200, `{"n": 42}`, map[string]any{"json_path": "n", "equals": int64(42)}, true},
		{"equals a number written otherwise", 200, `{"n": 42.0}`, map[string]any{"json_path": "n", "equals": int64(42)}, true},
		{"equals a rendered number", 200, `{"n": 42}`, map[string]any{"json_path": "n", "equals": "42"}, true},
		{"a string does not equal another number", 200, `{"n": 41}`, map[string]any{"json_path": "n", "equals": "42"}, false},
		{"a number does not equal a string", 200, `{"n": "42"}`, map[string]any{"json_path": "n", "equals": int64(42)}, false},
		{"equals a rendered boolean", 200, `{"b": true}`, map[string]any{"json_path": "b", "equals": "true"}, true},
		{"equals null", 200, `{"err": null}`, map[string]any{"json_path": "err", "equals": nil}, true},
		{"equals an object", 200, `{"v": {"a": [1, "x"]}}`, map[string]any{"json_path": "v", "equals": map[string]any{"a": []any{int64(1), "x"}}}, true},
		{"an object with a different value", 200, `{"v": {"a": [1, "y"]}}`, map[string]any{"json_path": "v", "equals": map[string]any{"a": []any{int64(1), "x"}}}, false},
		{"in the list", 200, `{"s": "SKIPPED"}`, map[string]any{"json_path": "s", "in": []any{"DONE", "SKIPPED"}}, true},
		{"not in the list", 200, `{"s": "RUNNING"}`, map[string]any{"json_path": "s", "in": []any{"DONE", "SKIPPED"}}, false},
		{"status first, then the body", 500, `{"s": "DONE"}`, map[string]any{"json_path": "s", "equals": "DONE"}, false},
	}
	for _, c := range cases {
		api.set(c.status, c.body)
		args := map[string]any{"url": srv.URL}
		for k, v := range c.args {
			args[k] = v
		}
		res, log := pokeHTTP(t, args)
		want := scheduler.AttemptReschedule
		if c.ready {
			want = scheduler.AttemptSuccess
		}
		if res.State != want || res.Final {
			t.Errorf("%s: %s %q final=%v; want %s\n%s", c.name, res.State, res.Error, res.Final, want, log)
		}
		if !c.ready && !strings.Contains(log, "not yet") {
			t.Errorf("%s: no log line says why it is not ready:\n%s", c.name, log)
		}
	}
}

func TestSensorHTTPFailedPokes(t *testing.T) {
	t.Parallel()
	api := &exportAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()

	api.set(200, "<html>maintenance page</html>")
	res, _ := pokeHTTP(t, map[string]any{"url": srv.URL, "json_path": "state"})
	if res.State != scheduler.AttemptFailed || res.Final || !strings.Contains(res.Error, "not JSON") || !strings.Contains(res.Error, "maintenance page") {
		t.Errorf("HTML with json_path: %+v; want a failed poke (not final) showing the body", res)
	}
	// Without json_path the body's format does not matter, and text is no XCom.
	if res, _ = pokeHTTP(t, map[string]any{"url": srv.URL}); res.State != scheduler.AttemptSuccess || len(res.XCom) != 0 {
		t.Errorf("HTML without json_path: %+v", res)
	}

	closed := httptest.NewServer(api)
	url := closed.URL
	closed.Close()
	res, _ = pokeHTTP(t, map[string]any{"url": url + "/health"})
	if res.State != scheduler.AttemptFailed || res.Final || !strings.Contains(res.Error, "sensor.http: GET "+url+"/health") {
		t.Errorf("connection refused: %+v; want a failed poke naming the request", res)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tc, _ := sensorContext(t, map[string]any{"url": srv.URL}, "UTC", time.Time{}, time.Time{})
	if res := SensorHTTP().Run(ctx, tc); res.State != scheduler.AttemptFailed || res.Final {
		t.Errorf("ended context: %+v; want a failed poke", res)
	}
}

func TestSensorHTTPXComAndConnection(t *testing.T) {
	t.Parallel()
	api := &exportAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" && r.Header.Get("Authorization") != "Bearer tok-123456" {
			http.Error(w, "who are you", 401)
			return
		}
		api.ServeHTTP(w, r)
	}))
	defer srv.Close()

	big, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 64<<10)})
	api.set(200, string(big))
	if res, _ := pokeHTTP(t, map[string]any{"url": srv.URL, "json_path": "pad"}); res.State != scheduler.AttemptSuccess || len(res.XCom) != 0 {
		t.Errorf("a body over 64 KiB: %s, %d bytes of XCom; want success without XCom", res.State, len(res.XCom))
	}

	api.set(200, `{"ready": true}`)
	res, log := pokeHTTPVia(t, srv.URL, map[string]any{"url": "/v1/status", "connection": "partner", "json_path": "ready"})
	if res.State != scheduler.AttemptSuccess || string(res.XCom) != `{"ready": true}` {
		t.Errorf("through a bearer connection: %+v\n%s", res, log)
	}
	if strings.Contains(log, "tok-123456") {
		t.Errorf("the log shows the token:\n%s", log)
	}
}

func TestSensorHTTPBadArgsAreFinal(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"url": "ftp://example.com"}, "not an http(s) URL"},
		{map[string]any{"url": "http://127.0.0.1:9", "expect_status": "ok"}, "expect_status"},
		{map[string]any{"url": "http://127.0.0.1:9", "expect_status": []any{}}, "expect_status is an empty list"},
		{map[string]any{"url": "http://127.0.0.1:9", "expect_status": int64(2000)}, "not an HTTP status code"},
		{map[string]any{"url": "http://127.0.0.1:9", "json_path": "data..state"}, "empty step"},
		{map[string]any{"url": "http://127.0.0.1:9", "equals": "done"}, "set json_path"},
		{map[string]any{"url": "http://127.0.0.1:9", "json_path": "s", "equals": "a", "in": []any{"b"}}, "not both"},
		{map[string]any{"url": "http://127.0.0.1:9", "json_path": "s", "in": "done"}, "in must be a list"},
		{map[string]any{"url": "/x", "connection": "missing"}, ""},
	}
	for _, c := range cases {
		res, _ := pokeHTTP(t, c.args)
		if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, c.want) {
			t.Errorf("%v: %s final=%v %q; want a final failure saying %q", c.args, res.State, res.Final, res.Error, c.want)
		}
	}
}

func TestSensorHTTPCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{}, "url"},
		{map[string]any{"url": "x", "method": "FETCH"}, "method"},
		{map[string]any{"url": "x", "headers": "a"}, "headers"},
		{map[string]any{"url": "x", "expect_status": "ok"}, "expect_status"},
		{map[string]any{"url": "x", "expect_status": int64(99)}, "expect_status"},
		{map[string]any{"url": "x", "expected_status": int64(200)}, "expected_status"},
		{map[string]any{"url": "x", "json_path": "a."}, "json_path"},
		{map[string]any{"url": "x", "equals": "done"}, "equals"},
		{map[string]any{"url": "x", "in": []any{"done"}}, "in"},
		{map[string]any{"url": "x", "json_path": "s", "equals": "a", "in": []any{"b"}}, "in"},
		{map[string]any{"url": "x", "json_path": "s", "in": "done"}, "in"},
	}
	for _, c := range cases {
		ps := SensorHTTP().Check(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	for _, ok := range []map[string]any{
		{"url": "https://api.shop.example.com/v2/health", "expect_status": int64(200)},
		{"url": "{{ var \"api\" }}/x", "expect_status": []any{int64(200), int64(204)}, "json_path": "data.0.state", "in": []any{"done", "{{ .params.s }}"}},
		{"url": "/status", "connection": "partner", "json_path": "{{ .params.path }}", "equals": map[string]any{"a": int64(1)}},
	} {
		if ps := SensorHTTP().Check(ok); len(ps) != 0 {
			t.Errorf("%v flagged: %+v", ok, ps)
		}
	}
}
