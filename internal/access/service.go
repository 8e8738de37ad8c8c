package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Results of an audited action.
const (
	ResultOK      = "ok"
	ResultRefused = "refused"
	ResultFailed  = "failed"
)

// Actions this package audits itself.
const (
	ActionGrant  = "users.grant"
	ActionRevoke = "users.revoke"
)

// Actor is who asks, and from where: Who an email (or "slack:U…" when none is known), From
// "cli", "slack:U…", "api" or "ui".
type Actor struct {
	Who, From string
}

// Target is what an action is on: a DAG, a run and a task of it, and/or a Subject such as
// the email a grant is for. Fields that do not apply stay empty.
type Target struct {
	DagID, RunID, TaskID, Subject string
}

// Event is one audited action, taken or refused.
type Event struct {
	Actor
	Action string
	Target
	// Result is ResultOK, ResultRefused or ResultFailed.
	Result string
	// Detail says what was done, or why not.
	Detail string
	// ID, when set, is the entry's id: a request recorded twice under one id is stored once
	// (Record then returns an error wrapping fsstore.ErrExists).
	ID string
}

// Grant is one person's role.
type Grant struct {
	Email     string
	Role      Role
	GrantedBy string
	GrantedAt time.Time
}

// Service applies the rule over the store and keeps the audit log. It is safe for
// concurrent use.
type Service struct {
	store *fsstore.Store
	now   func() time.Time
}

// New returns a Service over a store. now may be nil (time.Now).
func New(store *fsstore.Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// maxConflictRetries bounds re-read-and-retry loops on conditional writes.
const maxConflictRetries = 20

// RoleOf returns the role an email holds (None when it holds none).
func (s *Service) RoleOf(ctx context.Context, email string) (Role, error) {
	key, err := NormalizeEmail(email)
	if err != nil {
		return None, err
	}
	v, err := s.store.GetUser(ctx, key)
	if errors.Is(err, fsstore.ErrNotFound) {
		return None, nil
	}
	if err != nil {
		return None, fmt.Errorf("access: role of %s: %w", key, err)
	}
	r, err := ParseRole(v.Rec.Role)
	if err != nil {
		return None, fmt.Errorf("access: the grant of %s in Firestore (users/%s): %w", key, key, err)
	}
	return r, nil
}

// Authorize returns nil when email may do what needs need on dag (a zero DAGRecord for
// actions on no DAG), else a *DeniedError (errors.Is(err, ErrDenied)), or an error reading
// the grant.
func (s *Service) Authorize(ctx context.Context, email string, dag scheduler.DAGRecord, need Role) error {
	if _, err := NormalizeEmail(email); err != nil {
		return &DeniedError{Email: email, Need: need, DagID: dag.DagID, Owner: dag.Owner}
	}
	held, err := s.RoleOf(ctx, email)
	if err != nil {
		return err
	}
	return Decide(email, held, dag, need)
}

// Grant gives email a role (replacing the one it held) and audits it. It returns the role
// held before.
func (s *Service) Grant(ctx context.Context, email string, role Role, by Actor) (Role, error) {
	key, err := NormalizeEmail(email)
	if err != nil {
		return None, err
	}
	if role <= None || role > Admin {
		return None, fmt.Errorf("access: grant %s: %v is not a role to grant (viewer, operator or admin)", key, role)
	}
	prev, err := s.grant(ctx, key, role, by.Who)
	if err != nil {
		return prev, err
	}
	detail := fmt.Sprintf("%s → %s", prev, role)
	if err := s.Record(ctx, Event{Actor: by, Action: ActionGrant, Target: Target{Subject: key}, Result: ResultOK, Detail: detail}); err != nil {
		return prev, fmt.Errorf("access: granted %s to %s, but could not audit it: %w", role, key, err)
	}
	return prev, nil
}

// ErrAdminExists means a first-admin grant found that someone holds admin.
var ErrAdminExists = fsstore.ErrAdminExists

// GrantFirstAdmin makes email an admin only while no one holds admin, atomically (of
// concurrent first-admin grants one goes through, the others get ErrAdminExists, and record
// nothing), and audits it as Grant does. It returns the role email held before.
func (s *Service) GrantFirstAdmin(ctx context.Context, email string, by Actor) (Role, error) {
	key, err := NormalizeEmail(email)
	if err != nil {
		return None, err
	}
	p, err := s.store.GrantFirstAdmin(ctx, &fsstore.UserGrant{Email: key, Role: Admin.String(), GrantedBy: by.Who, GrantedAt: s.now()})
	if errors.Is(err, fsstore.ErrAdminExists) {
		return None, err
	}
	if err != nil {
		return None, fmt.Errorf("access: grant the first admin to %s: %w", key, err)
	}
	prev, _ := ParseRole(p)
	detail := fmt.Sprintf("%s → %s", prev, Admin)
	if err := s.Record(ctx, Event{Actor: by, Action: ActionGrant, Target: Target{Subject: key}, Result: ResultOK, Detail: detail}); err != nil {
		return prev, fmt.Errorf("access: granted admin to %s, but could not audit it: %w", key, err)
	}
	return prev, nil
}

func (s *Service) grant(ctx context.Context, key string, role Role, by string) (Role, error) {
	for range maxConflictRetries {
		v, err := s.store.GetUser(ctx, key)
		if errors.Is(err, fsstore.ErrNotFound) {
			err = s.store.CreateUser(ctx, &fsstore.UserGrant{Email: key, Role: role.String(), GrantedBy: by, GrantedAt: s.now()})
			if errors.Is(err, fsstore.ErrExists) {
				continue // someone granted it meanwhile: decide again
			}
			if err != nil {
				return None, fmt.Errorf("access: grant %s to %s: %w", role, key, err)
			}
			return None, nil
		}
		if err != nil {
			return None, fmt.Errorf("access: grant %s to %s: %w", role, key, err)
		}
		prev, _ := ParseRole(v.Rec.Role) // an unreadable role is replaced
		if prev == role {
			return prev, nil
		}
		_, err = s.store.UpdateUserIf(ctx, key, v.UpdateTime, map[string]any{
			"role": role.String(), "granted_by": by, "granted_at": s.now(),
		})
		if errors.Is(err, fsstore.ErrConflict) || errors.Is(err, fsstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return prev, fmt.Errorf("access: grant %s to %s: %w", role, key, err)
		}
		return prev, nil
	}
	return None, fmt.Errorf("access: grant %s to %s: too many concurrent changes", role, key)
}

// Revoke removes the role email holds and audits it. It returns the role removed; an email
// that holds none is an error saying so.
func (s *Service) Revoke(ctx context.Context, email string, by Actor) (Role, error) {
	key, err := NormalizeEmail(email)
	if err != nil {
		return None, err
	}
	prev, err := s.revoke(ctx, key)
	if err != nil {
		return None, err
	}
	if err := s.Record(ctx, Event{Actor: by, Action: ActionRevoke, Target: Target{Subject: key}, Result: ResultOK, Detail: "was " + prev.String()}); err != nil {
		return prev, fmt.Errorf("access: revoked %s's role, but could not audit it: %w", key, err)
	}
	return prev, nil
}

func (s *Service) revoke(ctx context.Context, key string) (Role, error) {
	for range maxConflictRetries {
		v, err := s.store.GetUser(ctx, key)
		if errors.Is(err, fsstore.ErrNotFound) {
			return None, fmt.Errorf("%s holds no role (see `updraft users list`)", key)
		}
		if err != nil {
			return None, fmt.Errorf("access: revoke %s: %w", key, err)
		}
		prev, _ := ParseRole(v.Rec.Role)
		err = s.store.DeleteUserIf(ctx, key, v.UpdateTime)
		if errors.Is(err, fsstore.ErrConflict) {
			continue
		}
		if err != nil {
			return None, fmt.Errorf("access: revoke %s: %w", key, err)
		}
		return prev, nil
	}
	return None, fmt.Errorf("access: revoke %s: too many concurrent changes", key)
}

// List returns every grant, by email.
func (s *Service) List(ctx context.Context) ([]Grant, error) {
	gs, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("access: list grants: %w", err)
	}
	out := make([]Grant, len(gs))
	for i, g := range gs {
		r, _ := ParseRole(g.Role)
		out[i] = Grant{Email: g.Email, Role: r, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt}
	}
	return out, nil
}

// Record appends an event to the audit log, stamped with the Service's clock.
func (s *Service) Record(ctx context.Context, e Event) error {
	err := s.store.AppendAudit(ctx, &fsstore.AuditEntry{
		ID: e.ID, At: s.now(), Who: e.Who, Action: e.Action, DagID: e.DagID, RunID: e.RunID, TaskID: e.TaskID,
		Subject: e.Subject, From: e.From, Result: e.Result, Detail: e.Detail,
	})
	if err != nil {
		return fmt.Errorf("access: audit %s by %s: %w", e.Action, e.Who, err)
	}
	return nil
}

// Audit reads the audit log, newest first: one DAG's entries when dagID is set, at most
// limit (100 when 0).
func (s *Service) Audit(ctx context.Context, dagID string, limit int) ([]fsstore.AuditEntry, error) {
	es, err := s.store.ListAudit(ctx, fsstore.AuditQuery{DagID: dagID, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("access: read the audit log: %w", err)
	}
	return es, nil
}
