package access

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/updraft-dev/updraft/scheduler"
)

// Role is what a person may do. Each role includes the ones below it.
type Role int

// The roles, weakest first. None is holding no role at all.
const (
	None Role = iota
	// Viewer may read everything.
	Viewer
	// Operator may also trigger, clear, retry, mark, pause and backfill.
	Operator
	// Admin may also grant and revoke roles.
	Admin
)

var roleNames = []string{"none", "viewer", "operator", "admin"}

// String is the role's name as grants store it.
func (r Role) String() string {
	if r < None || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads a role's name (viewer, operator or admin; any case).
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "viewer":
		return Viewer, nil
	case "operator":
		return Operator, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("unknown role %q: use viewer, operator or admin", s)
}

// NormalizeEmail checks that s is a bare email address ("kim@example.com", not
// "Kim <kim@example.com>") and returns it lower-cased, as grants are keyed.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "/") {
		return "", fmt.Errorf("%q is not an email address: give one like kim@example.com", s)
	}
	return strings.ToLower(s), nil
}

// ErrDenied is what every refusal wraps: errors.Is(err, ErrDenied).
var ErrDenied = errors.New("access denied")

// DeniedError says who lacks which role on which DAG, and how to get it.
type DeniedError struct {
	Email string
	// Held is the role the person holds (None: no grant).
	Held Role
	// Need is the role the action needs.
	Need Role
	// DagID is the DAG the action was on ("" for actions on no DAG), and Owner its owner.
	DagID, Owner string
	// Action names what was attempted, e.g. "task.retry" ("" when not known).
	Action string
}

// Error says who, what they hold, what was needed, where, and how to fix it.
func (e *DeniedError) Error() string {
	held := "holds no role"
	if e.Held != None {
		held = "holds only " + e.Held.String()
	}
	where := "everywhere"
	if e.DagID != "" {
		where = "on DAG " + e.DagID
	}
	what := ""
	if e.Action != "" {
		what = " for " + e.Action
	}
	return fmt.Sprintf("%s %s; %s%s needs %s: %s", e.Email, held, where, what, e.Need, e.Hint())
}

// Hint says how to get the role needed.
func (e *DeniedError) Hint() string {
	h := fmt.Sprintf("an admin can grant it with `updraft users grant %s %s`", e.Email, e.Need)
	if e.DagID != "" && e.Owner != "" && e.Need <= Operator {
		h += fmt.Sprintf(" (or ask the DAG's owner, %s)", e.Owner)
	}
	return h
}

// Is makes a DeniedError match ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Effective is the role email has on dag, holding held: held, raised to operator when email
// is the DAG's owner. A zero dag (DagID "") is the role outside any DAG.
func Effective(email string, held Role, dag scheduler.DAGRecord) Role {
	if dag.DagID != "" && dag.Owner != "" && strings.EqualFold(strings.TrimSpace(dag.Owner), strings.TrimSpace(email)) && held < Operator {
		return Operator
	}
	return held
}

// Decide is the rule: nil when email, holding held, may do what needs need on dag, else a
// *DeniedError. An empty email is never allowed.
func Decide(email string, held Role, dag scheduler.DAGRecord, need Role) error {
	if strings.TrimSpace(email) != "" && Effective(email, held, dag) >= need {
		return nil
	}
	return &DeniedError{Email: email, Held: held, Need: need, DagID: dag.DagID, Owner: dag.Owner}
}
