package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

func TestMain(m *testing.M) { emutest.Main(m) }

type bundle struct {
	ctx   context.Context
	store *fsstore.Store
	svc   *access.Service
	now   time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	ctx := context.Background()
	st, err := fsstore.Open(ctx, emutest.Project(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bundle{ctx: ctx, store: st, now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	b.svc = access.New(st, func() time.Time { return b.now })
	return b
}

var cli = access.Actor{Who: "admin@example.com", From: "cli"}

func TestGrantRevokeListAndAudit(t *testing.T) {
	b := setup(t)
	if prev, err := b.svc.Grant(b.ctx, "Kim@Example.com", access.Viewer, cli); err != nil || prev != access.None {
		t.Fatalf("first grant: %v, %v", prev, err)
	}
	b.now = b.now.Add(time.Minute)
	if prev, err := b.svc.Grant(b.ctx, "kim@example.com", access.Operator, cli); err != nil || prev != access.Viewer {
		t.Fatalf("regrant: %v, %v", prev, err)
	}
	if r, err := b.svc.RoleOf(b.ctx, "KIM@example.com"); err != nil || r != access.Operator {
		t.Fatalf("RoleOf = %v, %v; want operator", r, err)
	}
	kimAt := b.now
	b.now = b.now.Add(time.Minute)
	if _, err := b.svc.Grant(b.ctx, "lee@example.com", access.Admin, cli); err != nil {
		t.Fatal(err)
	}
	gs, err := b.svc.List(b.ctx)
	if err != nil || len(gs) != 2 || gs[0].Email != "kim@example.com" || gs[0].Role != access.Operator ||
		gs[0].GrantedBy != "admin@example.com" || !gs[0].GrantedAt.Equal(kimAt) || gs[1].Role != access.Admin {
		t.Fatalf("List = %+v, %v", gs, err)
	}
	b.now = b.now.Add(time.Minute) // audit entries are ordered by time
	if prev, err := b.svc.Revoke(b.ctx, "kim@example.com", cli); err != nil || prev != access.Operator {
		t.Fatalf("revoke: %v, %v", prev, err)
	}
	if r, _ := b.svc.RoleOf(b.ctx, "kim@example.com"); r != access.None {
		t.Fatalf("after revoke RoleOf = %v", r)
	}
	if _, err := b.svc.Revoke(b.ctx, "kim@example.com", cli); err == nil || !strings.Contains(err.Error(), "holds no role") {
		t.Fatalf("second revoke: %v; want holds no role", err)
	}
	es, err := b.svc.Audit(b.ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.Who != "admin@example.com" || e.From != "cli" || e.Result != access.ResultOK {
			t.Errorf("audit entry %+v", e)
		}
		got = append(got, e.Action+" "+e.Subject+" "+e.Detail)
	}
	want := []string{
		"users.revoke kim@example.com was operator",
		"users.grant lee@example.com none → admin",
		"users.grant kim@example.com viewer → operator",
		"users.grant kim@example.com none → viewer",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit, newest first:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGrantRefusesBadInput(t *testing.T) {
	b := setup(t)
	if _, err := b.svc.Grant(b.ctx, "not-an-email", access.Viewer, cli); err == nil || !strings.Contains(err.Error(), "not an email address") {
		t.Fatalf("bad email: %v", err)
	}
	if _, err := b.svc.Grant(b.ctx, "kim@example.com", access.None, cli); err == nil {
		t.Fatal("granting none succeeded")
	}
	if gs, _ := b.svc.List(b.ctx); len(gs) != 0 {
		t.Fatalf("grants after bad input: %+v", gs)
	}
}

func TestAuthorizeReadsGrantsAndTheOwnerRule(t *testing.T) {
	b := setup(t)
	d := scheduler.DAGRecord{DagID: "sales", Owner: "owner@example.com"}
	if _, err := b.svc.Grant(b.ctx, "viewer@example.com", access.Viewer, cli); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Grant(b.ctx, "op@example.com", access.Operator, cli); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Authorize(b.ctx, "op@example.com", d, access.Operator); err != nil {
		t.Errorf("operator: %v", err)
	}
	if err := b.svc.Authorize(b.ctx, "owner@example.com", d, access.Operator); err != nil {
		t.Errorf("owner without a grant: %v", err)
	}
	var denied *access.DeniedError
	if err := b.svc.Authorize(b.ctx, "viewer@example.com", d, access.Operator); !errors.As(err, &denied) || denied.Held != access.Viewer {
		t.Errorf("viewer: %v; want denied holding viewer", err)
	}
	if err := b.svc.Authorize(b.ctx, "nobody@example.com", d, access.Viewer); !errors.As(err, &denied) || denied.Held != access.None {
		t.Errorf("stranger: %v; want denied holding none", err)
	}
}

func TestConcurrentGrantsEndWithOneOfThem(t *testing.T) {
	b := setup(t)
	roles := []access.Role{access.Viewer, access.Operator, access.Admin, access.Viewer, access.Operator}
	errs := make(chan error, len(roles))
	for _, r := range roles {
		go func() { _, err := b.svc.Grant(b.ctx, "kim@example.com", r, cli); errs <- err }()
	}
	for range roles {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	gs, err := b.svc.List(b.ctx)
	if err != nil || len(gs) != 1 || gs[0].Role == access.None {
		t.Fatalf("List = %+v, %v", gs, err)
	}
	es, _ := b.svc.Audit(b.ctx, "", 0)
	if len(es) != len(roles) {
		t.Fatalf("%d audit entries; want one per grant (%d)", len(es), len(roles))
	}
}
