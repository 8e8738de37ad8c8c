package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/emulators/emutest"
)

func TestUsersGrantRevokeList(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		"UPDRAFT_USER":            "admin@example.com",
	}
	asFirstAdmin(t, env)
	mustRun := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, env, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("%v: exit %d; want output with %q\n%s%s", args, code, want, out, errOut)
		}
		return out
	}
	mustRun("granted viewer to kim@example.com", "users", "grant", "Kim@Example.com", "viewer")
	mustRun("granted operator to kim@example.com (was viewer)", "users", "grant", "kim@example.com", "operator")
	mustRun("kim@example.com already holds operator", "users", "grant", "kim@example.com", "OPERATOR")
	mustRun("granted admin to lee@example.com", "users", "grant", "lee@example.com", "admin")
	out := mustRun("EMAIL", "users", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "admin@example.com") || !strings.HasPrefix(lines[2], "kim@example.com") || !strings.Contains(lines[2], "operator") ||
		!strings.Contains(lines[2], "admin@example.com") || !strings.HasPrefix(lines[3], "lee@example.com") || !strings.Contains(lines[3], "admin") {
		t.Fatalf("users list:\n%s", out)
	}
	mustRun("revoked kim@example.com's role", "users", "revoke", "kim@example.com")
	if out := mustRun("EMAIL", "users", "list"); strings.Contains(out, "kim@") {
		t.Fatalf("kim still listed after revoke:\n%s", out)
	}
	if _, errOut, code := run(t, env, "users", "revoke", "kim@example.com"); code != 1 || !strings.Contains(errOut, "holds no role") {
		t.Fatalf("revoking twice: exit %d\n%s", code, errOut)
	}
}

func TestUsersGrantRejectsBadInput(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
	}
	asFirstAdmin(t, env) // dev@localhost: the one grant users list shows below
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "grant", "kim", "operator"}, `"kim" is not an email address`},
		{[]string{"users", "grant", "Kim <kim@example.com>", "operator"}, "not an email address"},
		{[]string{"users", "grant", "kim@example.com", "root"}, `unknown role "root": use viewer, operator or admin`},
		{[]string{"users", "grant", "kim@example.com"}, "give an email and a role"},
		{[]string{"users", "revoke", "nope"}, "not an email address"},
	} {
		_, errOut, code := run(t, env, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "usage: updraft users") {
			t.Errorf("%v: exit %d; want 2 and %q\n%s", c.args, code, c.want, errOut)
		}
	}
	if out, _, code := run(t, env, "users", "list"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("bad input granted something: exit %d\n%s", code, out)
	}
}
