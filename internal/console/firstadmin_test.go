package console_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
)

// With Config.FirstAdmin (the CLI's local mode), a grant of admin goes through without admin
// while no one holds it, and only then; a console without it (a served API) never allows it.
func TestFirstAdminOnlyWhileNoneHoldsIt(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	kim := console.Caller{Email: "kim@example.com", From: "cli"}
	served := b.Console.As(kim)
	local := console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Now: b.Clock.Now, FirstAdmin: true}).As(kim)

	if _, err := served.Grant(b.Ctx, "kim@example.com", "admin"); console.AsError(err).Code != console.CodeForbidden {
		t.Fatalf("first admin through a served console: %v; want forbidden", err)
	}
	if _, err := local.Grant(b.Ctx, "lee@example.com", "operator"); console.AsError(err).Code != console.CodeForbidden ||
		!strings.Contains(err.Error(), "no one holds admin yet: make the first admin with `updraft users grant EMAIL admin`") {
		t.Fatalf("a first grant of operator: %v; want forbidden (only admin is bootstrapped), saying how to make the first admin", err)
	}
	u, err := local.Grant(b.Ctx, "Kim@Example.com", "admin")
	if err != nil || u.Role != "admin" || u.Previous != "none" {
		t.Fatalf("first admin: %+v, %v; want admin, previously none", u, err)
	}
	es, err := b.Access.Audit(b.Ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	granted := 0
	for _, e := range es {
		if e.Who == "kim@example.com" && e.Action == access.ActionGrant && e.Subject == "kim@example.com" && e.Result == access.ResultOK && e.From == "cli" {
			granted++
		}
	}
	if granted != 1 {
		t.Fatalf("audit after the first admin: %+v; want kim's grant to kim, ok, from cli", es)
	}
	lee := console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Now: b.Clock.Now, FirstAdmin: true}).
		As(console.Caller{Email: "lee@example.com", From: "cli"})
	_, err = lee.Grant(b.Ctx, "lee@example.com", "admin")
	if ce := console.AsError(err); ce.Code != console.CodeForbidden || !strings.Contains(ce.Message, "needs admin") {
		t.Fatalf("a second admin by a non-admin: %v; want forbidden: kim is admin now", err)
	}
}

// Local first-admin grants racing each other make one admin, not one each: the others are
// refused as a non-admin's grant is once someone holds admin.
func TestFirstAdminOnceWhenGrantsRace(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		email := fmt.Sprintf("u%d@example.com", i)
		local := console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Now: b.Clock.Now, FirstAdmin: true}).
			As(console.Caller{Email: email, From: "cli"})
		wg.Go(func() { _, errs[i] = local.Grant(b.Ctx, email, "admin") })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
		} else if console.AsError(err).Code != console.CodeForbidden {
			t.Errorf("grant %d: %v; want ok or forbidden", i, err)
		}
	}
	gs, err := b.Access.List(b.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || len(gs) != 1 {
		t.Fatalf("%d first-admin grants went through, %d grants stored (%+v); want 1 and 1", won, len(gs), gs)
	}
}
