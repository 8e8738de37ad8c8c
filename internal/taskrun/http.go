package taskrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// maxHTTPBody bounds a response body read by the http type.
const maxHTTPBody = 10 << 20

// HTTP is the `http` task type (Airflow's HttpOperator): one request, its status checked, its
// response to XCom.
//
//	with:
//	  url: https://api.example.com/v1/orders?date={{ .ds }}   # or a path, with connection
//	  method: GET                # default GET
//	  connection: partner_api    # optional: base URL (host) and credentials
//	  headers: {Accept: application/json}
//	  params: {limit: "100"}     # query parameters
//	  body: "raw text"           # or json: {any: value}
//	  expected_status: [200]     # default: any 2xx
//	  response: auto             # json (fail if not JSON) | text | auto (JSON if it parses)
func HTTP() Type {
	return Type{Name: "http", Inline: true, Run: runHTTP, Check: checkHTTP}
}

var httpArgs = []string{"url", "method", "connection", "headers", "params", "body", "json", "expected_status", "response"}

func checkHTTP(with map[string]any) []dag.ArgProblem {
	var ps []dag.ArgProblem
	ps = append(ps, UnknownArgs(with, httpArgs)...)
	ps = append(ps, checkHTTPRequest("http", with)...)
	if v, ok := with["expected_status"]; ok {
		if _, err := statuses(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "expected_status", Msg: "expected_status " + err.Error(), Hint: "expected_status: [200, 204]"})
		}
	}
	if v, ok := with["response"]; ok && v != "json" && v != "text" && v != "auto" {
		ps = append(ps, dag.ArgProblem{Arg: "response", Msg: fmt.Sprintf("response %v is not json, text or auto", v)})
	}
	return ps
}

// checkHTTPRequest checks the arguments that build a request (url, method, headers, params,
// body, json), shared by the `http` and `sensor.http` types; typ names the type in messages.
func checkHTTPRequest(typ string, with map[string]any) []dag.ArgProblem {
	var ps []dag.ArgProblem
	if s, ok := with["url"].(string); !ok || strings.TrimSpace(s) == "" {
		ps = append(ps, dag.ArgProblem{Arg: "url", Msg: fmt.Sprintf("a %s task needs with.url", typ), Hint: "url: https://api.example.com/v1/items"})
	}
	if m, ok := with["method"]; ok {
		s, _ := m.(string)
		switch strings.ToUpper(s) {
		case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD":
		default:
			ps = append(ps, dag.ArgProblem{Arg: "method", Msg: fmt.Sprintf("method %v is not GET, POST, PUT, PATCH, DELETE or HEAD", m)})
		}
	}
	for _, k := range []string{"headers", "params"} {
		if v, ok := with[k]; ok {
			if _, ok := v.(map[string]any); !ok {
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: k + " must be a mapping of names to values"})
			}
		}
	}
	if _, b := with["body"]; b {
		if _, j := with["json"]; j {
			ps = append(ps, dag.ArgProblem{Arg: "json", Msg: "give body or json, not both"})
		}
	}
	return ps
}

// unknownArgs reports keys of with that a type does not take.
func UnknownArgs(with map[string]any, known []string) []dag.ArgProblem {
	var ps []dag.ArgProblem
	keys := make([]string, 0, len(with))
	for k := range with {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, n := range known {
			found = found || n == k
		}
		if !found {
			ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("unknown argument %q", k), Hint: "arguments: " + strings.Join(known, ", ")})
		}
	}
	return ps
}

// statuses reads a status code or a list of them; its error says what v must be, for the
// caller to prefix with the argument's name.
func statuses(v any) ([]int, error) {
	switch x := v.(type) {
	case int:
		return []int{x}, nil
	case int64:
		return []int{int(x)}, nil
	case float64:
		return []int{int(x)}, nil
	case []any:
		var out []int
		for _, e := range x {
			s, err := statuses(e)
			if err != nil || len(s) != 1 {
				return nil, fmt.Errorf("must be a status code or a list of them")
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a status code or a list of them, not %v", v)
}

func runHTTP(ctx context.Context, tc *Context) engine.Result {
	a := tc.Args
	req, err := newHTTPRequest(ctx, tc, "http")
	if err != nil {
		return Final(err.Error())
	}
	method, u := req.Method, req.URL
	tc.Log.Info(fmt.Sprintf("%s %s", method, redactURL(u)))
	resp, data, err := sendHTTP(tc, req)
	if ee := (*EgressError)(nil); errors.As(err, &ee) {
		return Final("http: " + ee.Error()) // no other try can pass the policy
	}
	if err != nil {
		return Failed(nil, "http: "+err.Error())
	}
	tc.Log.Info(fmt.Sprintf("status %d, %d bytes", resp.StatusCode, len(data)))
	if !statusOK(resp.StatusCode, a["expected_status"]) {
		return Failed(nil, fmt.Sprintf("http: %s %s returned %s, not the expected status; body: %s", method, redactURL(u), resp.Status, snippet(data)))
	}
	mode, _ := a["response"].(string)
	switch {
	case len(data) == 0:
		return engine.Result{State: scheduler.AttemptSuccess}
	case json.Valid(data):
		return engine.Result{State: scheduler.AttemptSuccess, XCom: data}
	case mode == "json":
		return Failed(nil, fmt.Sprintf("http: the response is not JSON (response: json): %s", snippet(data)))
	}
	s, _ := json.Marshal(string(data))
	return engine.Result{State: scheduler.AttemptSuccess, XCom: s}
}

// newHTTPRequest builds the request of an `http` or `sensor.http` task (typ prefixes the
// errors) from its rendered arguments url, method, connection, headers, params, body and json.
// Its errors are argument or connection errors, which another try cannot fix.
func newHTTPRequest(ctx context.Context, tc *Context, typ string) (*http.Request, error) {
	a := tc.Args
	raw, _ := a["url"].(string)
	method := "GET"
	if m, _ := a["method"].(string); m != "" {
		method = strings.ToUpper(m)
	}
	headers := http.Header{}
	if id, _ := a["connection"].(string); id != "" {
		c, err := tc.Secrets.Conn(ctx, id)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(raw, "://") {
			raw = strings.TrimRight(connBase(c), "/") + "/" + strings.TrimLeft(raw, "/")
		}
		switch {
		case c.Extra["auth"] == "bearer":
			headers.Set("Authorization", "Bearer "+c.Password)
		case c.Login != "":
			req := &http.Request{Header: http.Header{}}
			req.SetBasicAuth(c.Login, c.Password)
			headers.Set("Authorization", req.Header.Get("Authorization"))
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%s: %q is not an http(s) URL", typ, raw)
	}
	if p, ok := a["params"].(map[string]any); ok {
		q := u.Query()
		for k, v := range p {
			q.Set(k, fmt.Sprint(v))
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if s, ok := a["body"].(string); ok {
		body = strings.NewReader(s)
	}
	if j, ok := a["json"]; ok {
		b, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("%s: json: %w", typ, err)
		}
		body = bytes.NewReader(b)
		headers.Set("Content-Type", "application/json")
	}
	if h, ok := a["headers"].(map[string]any); ok {
		for k, v := range h {
			headers.Set(k, fmt.Sprint(v))
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	req.Header = headers
	return req, nil
}

// sendHTTP sends a request and reads its response body, at most maxHTTPBody bytes. Its
// errors (the request failed, the body could not be read or is too large) say what happened
// without a prefix.
//
// Every connection, the first and each redirect's, goes through the egress policy
// (egress.go): metadata, loopback, link-local and private addresses are refused unless
// allow-listed in EnvHTTPAllow.
func sendHTTP(tc *Context, req *http.Request) (*http.Response, []byte, error) {
	client, err := httpClient(tc.Getenv)
	if err != nil {
		return nil, nil, err
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the response: %w", err)
	}
	if len(data) > maxHTTPBody {
		return nil, nil, fmt.Errorf("the response is over %d MiB", maxHTTPBody>>20)
	}
	return resp, data, nil
}

func statusOK(code int, expected any) bool {
	if expected == nil {
		return code >= 200 && code < 300
	}
	want, _ := statuses(expected)
	for _, w := range want {
		if w == code {
			return true
		}
	}
	return false
}

// snippet is the start of a body, for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// redactURL hides credentials in a URL for logs.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// connBase is a connection's base URL, as Airflow's HttpHook builds it: the host if it has a
// scheme, else schema (or the connection type https, or http) + "://" + host[:port].
func connBase(c Connection) string {
	if strings.Contains(c.Host, "://") {
		return c.Host
	}
	scheme := c.Schema
	if scheme == "" {
		scheme = "http"
		if c.Type == "https" {
			scheme = "https"
		}
	}
	host := c.Host
	if c.Port != 0 {
		host = fmt.Sprintf("%s:%d", host, c.Port)
	}
	return scheme + "://" + host
}
