package fsstore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"
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
