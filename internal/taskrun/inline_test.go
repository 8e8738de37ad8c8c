package taskrun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

func TestInlineTypesAreCutAtTheirLimit(t *testing.T) {
	r := &Registry{types: map[string]Type{}}
	blocks := func(ctx context.Context, _ *Context) engine.Result {
		<-ctx.Done()
		return Failed(nil, context.Cause(ctx).Error())
	}
	r.Add(Type{Name: "waits.inline", Inline: true, Run: blocks, InlineLimit: 50 * time.Millisecond})
	r.Add(Type{Name: "waits.shrunk", Inline: true, Run: blocks, InlineLimit: time.Hour})
	r.Add(Type{Name: "waits.container", Run: func(ctx context.Context, _ *Context) engine.Result {
		select {
		case <-ctx.Done():
			return Failed(nil, "cut")
		case <-time.After(200 * time.Millisecond):
			return engine.Result{State: scheduler.AttemptSuccess}
		}
	}})
	env := map[string]string{EnvInlineDeadline: "80ms"}
	run := func(name string) engine.Result {
		typ, err := r.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return typ.Run(context.Background(), &Context{Getenv: func(k string) string { return env[k] }})
	}
	if res := run("waits.inline"); !strings.Contains(res.Error, "stopped after 50ms, the longest an inline waits.inline attempt may take") {
		t.Fatalf("inline type past its limit: %s %q", res.State, res.Error)
	}
	if res := run("waits.shrunk"); !strings.Contains(res.Error, "stopped after 80ms") {
		t.Fatalf("inline type past UPDRAFT_INLINE_DEADLINE: %s %q", res.State, res.Error)
	}
	// In a container (executor: job) there is no push request: only the task's timeout cuts it.
	typ, _ := r.Lookup("waits.inline")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if res := typ.Run(ctx, &Context{Task: &dag.Task{Executor: "job"}}); strings.Contains(res.Error, "stopped after") {
		t.Fatalf("an inline type run in a container (executor: job) was cut at the inline limit: %q", res.Error)
	}
	if res := run("waits.container"); res.State != scheduler.AttemptSuccess {
		t.Fatalf("a container type was cut: %s %q", res.State, res.Error)
	}
	for _, typ := range Core().Types() {
		if typ.Inline && typ.InlineLimit <= 0 {
			t.Errorf("%s has no inline limit", typ.Name)
		}
	}
}
