package taskrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// maxSensorXCom bounds the response body a sensor.http task keeps as its XCom value.
const maxSensorXCom = 64 << 10

// SensorHTTP is the `sensor.http` task type (Airflow's HttpSensor): each poke sends one request
// and checks its status and, optionally, a value in its JSON body.
//
//	with:
//	  url: https://api.example.com/v1/exports/{{ .ds_nodash }}   # or a path, with connection
//	  method: GET                  # default GET
//	  connection: partner_api      # optional: base URL (host) and credentials
//	  headers: {Accept: application/json}
//	  params: {date: "{{ .ds }}"}  # query parameters
//	  expect_status: [200]         # default [200]; another status means "not yet"
//	  json_path: data.0.state      # optional: a value in the JSON body (numbers index lists)
//	  equals: done                 # or in: [done, skipped]; without either, the value must be truthy
//
// A status not in expect_status, or a JSON value that does not meet the condition, is "not
// yet" (the task is rescheduled); a request that fails, or a body that is not JSON while
// json_path is set, is a failed poke.
func SensorHTTP() Type {
	return Type{Name: "sensor.http", Inline: true, Run: runSensorHTTP, Check: checkSensorHTTP}
}

var sensorHTTPArgs = []string{"url", "method", "connection", "headers", "params", "body", "json", "expect_status", "json_path", "equals", "in"}

func checkSensorHTTP(with map[string]any) []dag.ArgProblem {
	ps := UnknownArgs(with, sensorHTTPArgs)
	ps = append(ps, checkHTTPRequest("sensor.http", with)...)
	if v, ok := with["expect_status"]; ok && !IsTemplate(v) {
		if _, err := expectStatus(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "expect_status", Msg: err.Error(), Hint: "expect_status: [200, 204]"})
		}
	}
	p, hasPath := with["json_path"]
	if hasPath && !IsTemplate(p) {
		if _, err := parseJSONPath(p); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "json_path", Msg: err.Error(), Hint: "json_path: data.0.state"})
		}
	}
	_, hasEquals := with["equals"]
	in, hasIn := with["in"]
	switch {
	case hasEquals && hasIn:
		ps = append(ps, dag.ArgProblem{Arg: "in", Msg: "give equals or in, not both", Hint: "in: [done, skipped]"})
	case (hasEquals || hasIn) && !hasPath:
		arg := "equals"
		if hasIn {
			arg = "in"
		}
		ps = append(ps, dag.ArgProblem{Arg: arg, Msg: arg + " compares the value at json_path, and this task has no json_path", Hint: "json_path: data.state"})
	}
	if hasIn {
		if _, ok := in.([]any); !ok {
			ps = append(ps, dag.ArgProblem{Arg: "in", Msg: fmt.Sprintf("in must be a list of values, not %v", in), Hint: "in: [done, skipped]"})
		}
	}
	return ps
}

// expectStatus reads expect_status: a status code or a list of them, each 100 to 599.
func expectStatus(v any) ([]int, error) {
	codes, err := statuses(v)
	if err != nil {
		return nil, fmt.Errorf("expect_status %s", err)
	}
	if len(codes) == 0 {
		return nil, errors.New("expect_status is an empty list: no response could ever meet it")
	}
	for _, c := range codes {
		if c < 100 || c > 599 {
			return nil, fmt.Errorf("expect_status %d is not an HTTP status code (100 to 599)", c)
		}
	}
	return codes, nil
}

// parseJSONPath splits a dot path ("data.0.state") into its steps.
func parseJSONPath(v any) ([]string, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("json_path must be a dot path like data.0.state, not %v", v)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("json_path is empty")
	}
	steps := strings.Split(s, ".")
	for _, st := range steps {
		if st == "" {
			return nil, fmt.Errorf("json_path %q has an empty step (two dots, or a dot at an end)", s)
		}
	}
	return steps, nil
}

// lookupJSON follows a path through a decoded JSON value: a step names a key of an object,
// or, as a whole number, an index of a list. found is false when a step leads nowhere.
func lookupJSON(v any, path []string) (val any, found bool) {
	for _, st := range path {
		switch x := v.(type) {
		case map[string]any:
			if v, found = x[st]; !found {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(st)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// truthy is Python's truth for a JSON value: not null, false, "", 0, [] or {}.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		r, ok := new(big.Rat).SetString(x.String())
		return !ok || r.Sign() != 0
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// decodeJSON decodes JSON with its numbers kept exact (json.Number).
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// jsonEqual compares a value of the body (decoded by decodeJSON) with one of the task's
// arguments (as YAML or a template gave it). Numbers compare by value (1 = 1.0); a string
// argument also matches a number or boolean written the same way, since templates render to
// strings ("{{ .params.count }}" matches 42).
func jsonEqual(got, want any) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	w, err := decodeJSON(b)
	if err != nil {
		return false
	}
	if s, ok := w.(string); ok {
		switch g := got.(type) {
		case json.Number:
			w = json.Number(strings.TrimSpace(s))
		case bool:
			return strconv.FormatBool(g) == strings.TrimSpace(s)
		}
	}
	return sameJSON(got, w)
}

func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		rx, okx := new(big.Rat).SetString(x.String())
		ry, oky := new(big.Rat).SetString(y.String())
		return okx && oky && rx.Cmp(ry) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !sameJSON(e, f) {
				return false
			}
		}
		return true
	}
	return false
}

// compact shows a JSON value in a log line, cut at 200 characters.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func runSensorHTTP(ctx context.Context, tc *Context) engine.Result {
	a := tc.Args
	want := []int{200}
	if v, ok := a["expect_status"]; ok {
		codes, err := expectStatus(v)
		if err != nil {
			return Final("sensor.http: " + err.Error() + " (write expect_status: 200 or [200, 204])")
		}
		want = codes
	}
	var path []string
	if v, ok := a["json_path"]; ok {
		p, err := parseJSONPath(v)
		if err != nil {
			return Final("sensor.http: " + err.Error() + " (write json_path: data.0.state)")
		}
		path = p
	}
	equals, hasEquals := a["equals"]
	inV, hasIn := a["in"]
	in, inOK := inV.([]any)
	switch {
	case hasEquals && hasIn:
		return Final("sensor.http: give equals or in, not both")
	case (hasEquals || hasIn) && path == nil:
		return Final("sensor.http: equals and in compare the value at json_path: set json_path too")
	case hasIn && !inOK:
		return Final(fmt.Sprintf("sensor.http: in must be a list of values, not %v (write in: [done, skipped])", inV))
	}
	req, err := newHTTPRequest(ctx, tc, "sensor.http")
	if err != nil {
		return Final(err.Error())
	}
	target := req.Method + " " + redactURL(req.URL)
	resp, data, err := sendHTTP(tc, req)
	if ee := (*EgressError)(nil); errors.As(err, &ee) {
		return Final("sensor.http: " + ee.Error()) // no other poke can pass the policy
	}
	if err != nil {
		return Failed(nil, fmt.Sprintf("sensor.http: %s: %v", target, err))
	}
	if !slices.Contains(want, resp.StatusCode) {
		tc.Log.Info(fmt.Sprintf("sensor.http: %s answered %s, not %s: not yet; body: %s", target, resp.Status, intsString(want), snippet(data)))
		return engine.Result{State: scheduler.AttemptReschedule}
	}
	isJSON := len(data) > 0 && json.Valid(data)
	if path != nil {
		if !isJSON {
			return Failed(nil, fmt.Sprintf("sensor.http: %s answered %s with a body that is not JSON, and json_path is set: %s", target, resp.Status, snippet(data)))
		}
		body, err := decodeJSON(data)
		if err != nil {
			return Failed(nil, fmt.Sprintf("sensor.http: %s: decoding the JSON body: %v", target, err))
		}
		p := strings.Join(path, ".")
		val, found := lookupJSON(body, path)
		var why string
		switch {
		case !found:
			why = fmt.Sprintf("%s is not in the body", p)
		case hasEquals && !jsonEqual(val, equals):
			why = fmt.Sprintf("%s is %s, not %s", p, compact(val), compact(equals))
		case hasIn && !anyJSONEqual(val, in):
			why = fmt.Sprintf("%s is %s, not one of %s", p, compact(val), compact(in))
		case !hasEquals && !hasIn && !truthy(val):
			why = fmt.Sprintf("%s is %s (null, false, empty or 0)", p, compact(val))
		}
		if why != "" {
			tc.Log.Info(fmt.Sprintf("sensor.http: %s answered %s, but %s: not yet", target, resp.Status, why))
			return engine.Result{State: scheduler.AttemptReschedule}
		}
		tc.Log.Info(fmt.Sprintf("sensor.http: %s answered %s and %s is %s: condition met", target, resp.Status, p, compact(val)))
	} else {
		tc.Log.Info(fmt.Sprintf("sensor.http: %s answered %s: condition met", target, resp.Status))
	}
	res := engine.Result{State: scheduler.AttemptSuccess}
	if isJSON && len(data) <= maxSensorXCom {
		res.XCom = data
	}
	return res
}

func anyJSONEqual(v any, list []any) bool {
	for _, w := range list {
		if jsonEqual(v, w) {
			return true
		}
	}
	return false
}

// intsString writes status codes as a YAML-ish list: "200" or "[200, 204]".
func intsString(list []int) string {
	if len(list) == 1 {
		return strconv.Itoa(list[0])
	}
	parts := make([]string, len(list))
	for i, n := range list {
		parts[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
