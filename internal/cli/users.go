package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
)

// actor is who runs the command, for the audit log: UPDRAFT_USER (an email), else the
// login name.
func (a *App) actor() access.Actor {
	who := a.Getenv("UPDRAFT_USER")
	if who == "" {
		who = a.Getenv("USER")
	}
	if who == "" {
		who = "unknown"
	}
	return access.Actor{Who: who, From: "cli"}
}

func cmdUsersGrant(ctx context.Context, a *App, args []string) error {
	if len(args) != 2 {
		return usagef("give an email and a role (viewer, operator or admin)")
	}
	email, err := access.NormalizeEmail(args[0])
	if err != nil {
		return usagef("%v", err)
	}
	role, err := access.ParseRole(args[1])
	if err != nil {
		return usagef("%v", err)
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	prev, err := access.New(st, nil).Grant(ctx, email, role, a.actor())
	if err != nil {
		return err
	}
	switch prev {
	case role:
		fmt.Fprintf(a.Stdout, "%s already holds %s\n", email, role)
	case access.None:
		fmt.Fprintf(a.Stdout, "granted %s to %s\n", role, email)
	default:
		fmt.Fprintf(a.Stdout, "granted %s to %s (was %s)\n", role, email, prev)
	}
	return nil
}

func cmdUsersRevoke(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("give one email")
	}
	email, err := access.NormalizeEmail(args[0])
	if err != nil {
		return usagef("%v", err)
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	prev, err := access.New(st, nil).Revoke(ctx, email, a.actor())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "revoked %s from %s\n", prev, email)
	return nil
}

func cmdUsersList(ctx context.Context, a *App, args []string) error {
	if len(args) != 0 {
		return usagef("users list takes no arguments")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	gs, err := access.New(st, nil).List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tROLE\tGRANTED BY\tGRANTED AT")
	for _, g := range gs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.Email, g.Role, g.GrantedBy, g.GrantedAt.UTC().Format(time.RFC3339))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.Stderr, "(a DAG's owner is also an operator of that DAG, without a grant)")
	return nil
}
