package access

import (
	"errors"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/scheduler"
)

func TestDecide(t *testing.T) {
	dagRec := scheduler.DAGRecord{DagID: "sales", Owner: "Owner@Example.com"}
	cases := []struct {
		name  string
		email string
		held  Role
		dag   scheduler.DAGRecord
		need  Role
		ok    bool
	}{
		{"viewer may view", "kim@example.com", Viewer, dagRec, Viewer, true},
		{"viewer may not operate", "kim@example.com", Viewer, dagRec, Operator, false},
		{"no role may not view", "kim@example.com", None, dagRec, Viewer, false},
		{"operator may operate", "kim@example.com", Operator, dagRec, Operator, true},
		{"operator may not administer", "kim@example.com", Operator, dagRec, Admin, false},
		{"admin may operate", "kim@example.com", Admin, dagRec, Operator, true},
		{"admin may administer", "kim@example.com", Admin, scheduler.DAGRecord{}, Admin, true},
		{"owner operates its DAG without a grant", "owner@example.com", None, dagRec, Operator, true},
		{"owner with viewer operates its DAG", "owner@example.com", Viewer, dagRec, Operator, true},
		{"owner is not an admin of its DAG", "owner@example.com", None, dagRec, Admin, false},
		{"owner of one DAG is nothing elsewhere", "owner@example.com", None, scheduler.DAGRecord{DagID: "other", Owner: "x@example.com"}, Operator, false},
		{"owner rule needs a DAG", "owner@example.com", None, scheduler.DAGRecord{Owner: "owner@example.com"}, Operator, false},
		{"empty email is never allowed", "", Admin, dagRec, Viewer, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Decide(c.email, c.held, c.dag, c.need)
			if c.ok {
				if err != nil {
					t.Fatalf("Decide = %v; want allowed", err)
				}
				return
			}
			var d *DeniedError
			if !errors.As(err, &d) || !errors.Is(err, ErrDenied) {
				t.Fatalf("Decide = %v; want a *DeniedError matching ErrDenied", err)
			}
			if d.Need != c.need || d.Held != c.held || d.DagID != c.dag.DagID {
				t.Fatalf("DeniedError = %+v; want need %v held %v dag %q", d, c.need, c.held, c.dag.DagID)
			}
		})
	}
}

func TestDeniedErrorSaysWhoWhatWhereAndHow(t *testing.T) {
	err := Decide("kim@example.com", Viewer, scheduler.DAGRecord{DagID: "sales", Owner: "owner@example.com"}, Operator)
	msg := err.Error()
	for _, want := range []string{"kim@example.com", "holds only viewer", "DAG sales", "needs operator",
		"`updraft users grant kim@example.com operator`", "owner@example.com"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if msg := Decide("kim@example.com", None, scheduler.DAGRecord{}, Admin).Error(); !strings.Contains(msg, "holds no role") || !strings.Contains(msg, "everywhere") {
		t.Errorf("%q: want holds no role … everywhere", msg)
	}
}

func TestParseRoleAndEmail(t *testing.T) {
	for in, want := range map[string]Role{"viewer": Viewer, "Operator": Operator, " ADMIN ": Admin} {
		if r, err := ParseRole(in); err != nil || r != want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "none", "root", "owner"} {
		if _, err := ParseRole(bad); err == nil || !strings.Contains(err.Error(), "viewer, operator or admin") {
			t.Errorf("ParseRole(%q) = %v; want an error listing the roles", bad, err)
		}
	}
	if e, err := NormalizeEmail(" Kim@Example.COM "); err != nil || e != "kim@example.com" {
		t.Errorf("NormalizeEmail = %q, %v", e, err)
	}
	for _, bad := range []string{"", "kim", "kim@", "Kim <kim@example.com>", "a/b@example.com", "@example.com"} {
		if _, err := NormalizeEmail(bad); err == nil || !strings.Contains(err.Error(), "not an email address") {
			t.Errorf("NormalizeEmail(%q) = %v; want not an email address", bad, err)
		}
	}
}
