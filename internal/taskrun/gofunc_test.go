package taskrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// funcTable is a test's own table of go functions, in place of tasks.Register's.
type funcTable map[string]tasks.GoFunc

func (m funcTable) add(name string, f tasks.GoFunc) { m[name] = f }

func (m funcTable) goFuncs() goFuncs {
	return goFuncs{
		lookup: func(name string) (tasks.GoFunc, bool) { f, ok := m[name]; return f, ok },
		names: func() []string {
			out := make([]string, 0, len(m))
			for n := range m {
				out = append(out, n)
			}
			sort.Strings(out)
			return out
		},
	}
}

// goContext is a go task's context with its log in a buffer.
func goContext(t *testing.T, args map[string]any) (*Context, *bytes.Buffer) {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "dedupe", TryNumber: 1, AttemptID: "a1"}
	var buf bytes.Buffer
	log, err := tasks.NewLogger(&buf, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	return &Context{Ref: ref, Args: args, Log: log, Secrets: fakeConns{}}, &buf
}

func TestGoTaskMapsOutcomesToResults(t *testing.T) {
	funcs := funcTable{}
	funcs.add("test_value", func(_ context.Context, tc *tasks.Context) (any, error) {
		var n int
		if err := tc.DecodeArg("n", &n); err != nil {
			return nil, err
		}
		return map[string]any{"doubled": 2 * n, "note": "<b>&"}, nil
	})
	funcs.add("test_nil", func(context.Context, *tasks.Context) (any, error) { return nil, nil })
	funcs.add("test_error", func(context.Context, *tasks.Context) (any, error) {
		return nil, errors.New("warehouse said no")
	})
	funcs.add("test_skip", func(context.Context, *tasks.Context) (any, error) {
		return nil, fmt.Errorf("no orders today: %w", tasks.ErrSkip)
	})
	funcs.add("test_bare_skip", func(context.Context, *tasks.Context) (any, error) { return nil, tasks.ErrSkip })
	funcs.add("test_chan", func(context.Context, *tasks.Context) (any, error) { return make(chan int), nil })
	funcs.add("test_panic", func(context.Context, *tasks.Context) (any, error) { panic("boom") })

	run := func(args map[string]any) (goResult, string) {
		tc, log := goContext(t, args)
		res := goRunner(goReturnGrace, funcs.goFuncs())(context.Background(), tc)
		return goResult{res.State, string(res.XCom), res.Error, res.Final}, log.String()
	}
	cases := []struct {
		name string
		args map[string]any
		want goResult
		err  []string // substrings of the error
		log  string
	}{
		{"value", map[string]any{"func": "test_value", "n": "21"},
			goResult{State: scheduler.AttemptSuccess, XCom: `{"doubled":42,"note":"<b>&"}`}, nil, ""},
		{"nil value", map[string]any{"func": "test_nil"}, goResult{State: scheduler.AttemptSuccess}, nil, ""},
		{"argument error", map[string]any{"func": "test_value", "n": "many"},
			goResult{State: scheduler.AttemptFailed}, []string{"test_value: with.n", "toJSON"}, ""},
		{"error", map[string]any{"func": "test_error"},
			goResult{State: scheduler.AttemptFailed}, []string{"test_error: warehouse said no"}, ""},
		{"wrapped skip", map[string]any{"func": "test_skip"}, goResult{State: scheduler.AttemptSkipped}, nil, "no orders today"},
		{"bare skip", map[string]any{"func": "test_bare_skip"}, goResult{State: scheduler.AttemptSkipped}, nil, ""},
		{"not JSON", map[string]any{"func": "test_chan"},
			goResult{State: scheduler.AttemptFailed}, []string{"test_chan returned a chan int", "not JSON-encodable"}, ""},
		{"panic", map[string]any{"func": "test_panic"},
			goResult{State: scheduler.AttemptFailed}, []string{"test_panic panicked: boom"}, "gofunc_test.go"},
		{"unknown", map[string]any{"func": "no_such_func"},
			goResult{State: scheduler.AttemptFailed, Final: true},
			[]string{`no function "no_such_func"`, "test_bare_skip, test_chan, test_error", "custom worker", "tasks.Register", "docs/tasks/go.md"}, ""},
		{"no func", map[string]any{}, goResult{State: scheduler.AttemptFailed, Final: true}, []string{"with.func is empty"}, ""},
	}
	for _, c := range cases {
		got, log := run(c.args)
		errText := got.Error
		got.Error = ""
		if got != c.want {
			t.Errorf("%s: %+v (error %q); want %+v", c.name, got, errText, c.want)
		}
		if len(c.err) == 0 && errText != "" {
			t.Errorf("%s: error %q; want none", c.name, errText)
		}
		for _, s := range c.err {
			if !strings.Contains(errText, s) {
				t.Errorf("%s: error %q; want it to contain %q", c.name, errText, s)
			}
		}
		if !strings.Contains(log, c.log) {
			t.Errorf("%s: log %q; want it to contain %q", c.name, log, c.log)
		}
	}
}

// goResult is the comparable part of an engine.Result.
type goResult struct {
	State scheduler.AttemptState
	XCom  string
	Error string
	Final bool
}

func TestGoTaskEndsWithItsContext(t *testing.T) {
	funcs := funcTable{}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	funcs.add("test_obeys_ctx", func(ctx context.Context, _ *tasks.Context) (any, error) {
		<-ctx.Done()
		return "late", ctx.Err()
	})
	funcs.add("test_ignores_ctx", func(context.Context, *tasks.Context) (any, error) {
		<-release
		return "never seen", nil
	})
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("timed out after 1s (the task's timeout)"))

	tc, _ := goContext(t, map[string]any{"func": "test_obeys_ctx"})
	res := goRunner(time.Hour, funcs.goFuncs())(ctx, tc)
	if res.State != scheduler.AttemptFailed || res.Final || len(res.XCom) != 0 ||
		!strings.Contains(res.Error, "test_obeys_ctx: timed out after 1s") || !strings.Contains(res.Error, "context canceled") {
		t.Errorf("a function returning at its timeout: %s %q %s; want a retryable failure naming the timeout", res.State, res.Error, res.XCom)
	}
	tc, _ = goContext(t, map[string]any{"func": "test_ignores_ctx"})
	res = goRunner(0, funcs.goFuncs())(ctx, tc)
	if res.State != scheduler.AttemptFailed || !strings.Contains(res.Error, "timed out after 1s") || !strings.Contains(res.Error, "did not return") {
		t.Errorf("a function ignoring its timeout: %s %q; want failed without waiting for it", res.State, res.Error)
	}
}

func TestGoCheckAndRegistry(t *testing.T) {
	typ, err := Core().Lookup("go")
	if err != nil {
		t.Fatal(err)
	}
	if typ.Inline || Core().Inline(scheduler.TaskMessage{Type: "go"}) {
		t.Error("go must run in a worker container, not inline")
	}
	for _, c := range []struct {
		with map[string]any
		want string // "" for no problem
	}{
		{map[string]any{"func": "dedupe_orders", "orders": "{{ xcom \"fetch\" | toJSON }}", "anything": []any{1}}, ""},
		{map[string]any{"func": "{{ .params.fn }}"}, ""},
		{map[string]any{"orders": "[]"}, "needs with.func"},
		{map[string]any{"func": ""}, "must be a function's name"},
		{map[string]any{"func": 3}, "must be a function's name"},
	} {
		ps := typ.Check(c.with)
		switch {
		case c.want == "" && len(ps) > 0:
			t.Errorf("%v: %v; want no problem", c.with, ps)
		case c.want != "" && (len(ps) != 1 || ps[0].Arg != "func" || !strings.Contains(ps[0].Msg, c.want)):
			t.Errorf("%v: %v; want one problem on func saying %q", c.with, ps, c.want)
		}
	}
}
