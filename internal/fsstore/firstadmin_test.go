package fsstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/updraft-dev/updraft/internal/fsstore"
)

// Of concurrent first-admin grants exactly one wins: the "no one holds admin" check and
// the grant are one transaction (six `updraft users grant` at once made six admins).
func TestGrantFirstAdminOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	must(t, "a viewer", b.st.CreateUser(b.ctx, &fsstore.UserGrant{Email: "v@example.com", Role: "viewer", GrantedAt: b.clock}))
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = b.st.GrantFirstAdmin(b.ctx, &fsstore.UserGrant{Email: fmt.Sprintf("u%d@example.com", i), Role: "admin", GrantedAt: b.clock})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fsstore.ErrAdminExists):
			t.Errorf("grant %d: %v; want nil or ErrAdminExists", i, err)
		}
	}
	us, err := b.st.ListUsers(b.ctx)
	must(t, "list", err)
	admins := 0
	for _, u := range us {
		if u.Role == "admin" {
			admins++
		}
	}
	if won != 1 || admins != 1 {
		t.Fatalf("%d grants won, %d admins; want 1 and 1", won, admins)
	}
	// A person holding a role becomes the first admin too, and the role held is returned;
	// once there is an admin, no one else does.
	prev, err := b.st.GrantFirstAdmin(b.ctx, &fsstore.UserGrant{Email: "v@example.com", Role: "admin", GrantedAt: b.clock})
	if !errors.Is(err, fsstore.ErrAdminExists) {
		t.Fatalf("second first admin: prev %q, %v; want ErrAdminExists", prev, err)
	}
	b2 := setup(t)
	must(t, "a viewer", b2.st.CreateUser(b2.ctx, &fsstore.UserGrant{Email: "v@example.com", Role: "viewer", GrantedAt: b2.clock}))
	prev, err = b2.st.GrantFirstAdmin(b2.ctx, &fsstore.UserGrant{Email: "v@example.com", Role: "admin", GrantedAt: b2.clock})
	if err != nil || prev != "viewer" {
		t.Fatalf("viewer to first admin: prev %q, %v; want viewer, nil", prev, err)
	}
}
