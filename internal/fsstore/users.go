package fsstore

import (
	"context"
	"errors"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ColUsers holds role grants, one document per person, its id the lower-cased email.
const ColUsers = "users"

// UserGrant is the role one person holds, by email. The access package decides what roles
// mean; the store only keeps them.
type UserGrant struct {
	Email     string    `firestore:"email" json:"email"`
	Role      string    `firestore:"role" json:"role"`
	GrantedBy string    `firestore:"granted_by" json:"granted_by"`
	GrantedAt time.Time `firestore:"granted_at" json:"granted_at"`
}

// GetUser reads the grant of an email (already lower-cased: it is the document id);
// ErrNotFound when the person holds no role.
func (s *Store) GetUser(ctx context.Context, email string) (*Versioned[UserGrant], error) {
	return get[UserGrant](ctx, s, ColUsers, email)
}

// CreateUser stores a first grant for an email; ErrExists when it already holds one.
func (s *Store) CreateUser(ctx context.Context, g *UserGrant) error {
	return s.create(ctx, ColUsers, g.Email, g)
}

// UpdateUserIf changes fields of a grant if it is unchanged since updateTime.
func (s *Store) UpdateUserIf(ctx context.Context, email string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColUsers, email, updateTime, fields)
}

// DeleteUserIf removes a grant if it is unchanged since updateTime: ErrConflict when it
// changed or is gone (re-read: GetUser then says ErrNotFound).
func (s *Store) DeleteUserIf(ctx context.Context, email string, updateTime time.Time) error {
	_, err := s.fs.Collection(ColUsers).Doc(email).Delete(ctx, firestore.LastUpdateTime(updateTime))
	s.wrote(ColUsers, email, err)
	return mapErr("fsstore: delete "+ColUsers+"/"+email, err)
}

// ListUsers reads every grant, by email.
func (s *Store) ListUsers(ctx context.Context) ([]UserGrant, error) {
	vs, err := queryAll[UserGrant](ctx, s, s.fs.Collection(ColUsers).OrderBy("email", firestore.Asc), "users")
	if err != nil {
		return nil, err
	}
	out := make([]UserGrant, len(vs))
	for i, v := range vs {
		out[i] = v.Rec
	}
	return out, nil
}

// ErrAdminExists means a first-admin grant found someone already holding admin.
var ErrAdminExists = errors.New("fsstore: someone holds admin")

// GrantFirstAdmin stores g (its Role "admin") only while no one holds admin, in one
// transaction: of concurrent first-admin grants one wins and the others get ErrAdminExists.
// It returns the role the email held before ("" for none).
func (s *Store) GrantFirstAdmin(ctx context.Context, g *UserGrant) (string, error) {
	var prev string
	err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		prev = ""
		admins, err := tx.Documents(s.fs.Collection(ColUsers).Where("role", "==", g.Role).Limit(1)).GetAll()
		s.read(max(len(admins), 1))
		if err != nil {
			return err
		}
		if len(admins) > 0 {
			return ErrAdminExists
		}
		ref := s.fs.Collection(ColUsers).Doc(g.Email)
		snap, err := tx.Get(ref)
		s.read(1)
		if err == nil {
			if r, ok := snap.Data()["role"].(string); ok {
				prev = r
			}
		} else if status.Code(err) != codes.NotFound {
			return err
		}
		return tx.Set(ref, g)
	})
	s.wrote(ColUsers, g.Email, err)
	if errors.Is(err, ErrAdminExists) {
		return "", err
	}
	return prev, mapErr("fsstore: grant the first admin "+g.Email, err)
}
