package tasks

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// registerForTest registers f under name until the test ends (Register panics on a second
// registration, so `go test -count=2` needs the name gone again).
func registerForTest(t *testing.T, name string, f GoFunc) {
	t.Helper()
	Register(name, f)
	t.Cleanup(func() {
		goFuncs.Lock()
		delete(goFuncs.m, name)
		goFuncs.Unlock()
	})
}

func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil {
			t.Errorf("%s: no panic", what)
		} else if !strings.Contains(fmt.Sprint(p), want) {
			t.Errorf("%s: panic %q; want it to mention %q", what, p, want)
		}
	}()
	f()
}

func TestGoRegisterRejectsProgrammingErrors(t *testing.T) {
	ok := func(context.Context, *Context) (any, error) { return nil, nil }
	mustPanic(t, "empty name", "empty function name", func() { Register("", ok) })
	mustPanic(t, "blank name", "empty function name", func() { Register("  ", ok) })
	mustPanic(t, "nil func", "nil function", func() { Register("test_nil_func", nil) })
	registerForTest(t, "test_once", ok)
	mustPanic(t, "duplicate", "already registered", func() { Register("test_once", ok) })
	if got := RegisteredFuncs(); !strings.Contains(strings.Join(got, ","), "test_once") || strings.Contains(strings.Join(got, ","), "test_nil_func") {
		t.Errorf("registered %v; want test_once and not test_nil_func", got)
	}
}

// TestGoRegisteredFindsTheFunction: the worker's go type finds a function by the name it was
// registered under, and nothing under another.
func TestGoRegisteredFindsTheFunction(t *testing.T) {
	registerForTest(t, "test_found", func(context.Context, *Context) (any, error) { return "found", nil })
	f, ok := Registered("test_found")
	if !ok {
		t.Fatal("test_found not found")
	}
	if v, err := f(context.Background(), &Context{}); v != "found" || err != nil {
		t.Errorf("the function found returned %v %v", v, err)
	}
	if _, ok := Registered("test_not_there"); ok {
		t.Error("a name never registered was found")
	}
}

func TestGoDecodeArg(t *testing.T) {
	tc := &Context{Args: map[string]any{
		"orders": `[{"id": 1}, {"id": 2}]`, "name": "null", "limit": 5, "rate": "0.25",
		"opts": map[string]any{"key": "id"}, "bad": "map[id:1]",
	}}
	var orders []map[string]any
	if err := tc.DecodeArg("orders", &orders); err != nil || len(orders) != 2 || orders[1]["id"] != 2.0 {
		t.Errorf("orders %v %v", orders, err)
	}
	var name string
	if err := tc.DecodeArg("name", &name); err != nil || name != "null" {
		t.Errorf("a string into a *string: %q %v; want it as it is", name, err)
	}
	var limit int
	var rate float64
	if err := tc.DecodeArg("limit", &limit); err != nil || limit != 5 {
		t.Errorf("limit %d %v", limit, err)
	}
	if err := tc.DecodeArg("rate", &rate); err != nil || rate != 0.25 {
		t.Errorf("rate %v %v", rate, err)
	}
	var opts struct{ Key string }
	if err := tc.DecodeArg("opts", &opts); err != nil || opts.Key != "id" {
		t.Errorf("opts %+v %v", opts, err)
	}
	if err := tc.DecodeArg("bad", &orders); err == nil || !strings.Contains(err.Error(), "with.bad") || !strings.Contains(err.Error(), "toJSON") {
		t.Errorf("a Go-printed map: %v; want an error pointing to toJSON", err)
	}
	if err := tc.DecodeArg("missing", &limit); err == nil || !strings.Contains(err.Error(), "with.missing is missing") {
		t.Errorf("missing: %v", err)
	}
}
