package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/updraft-dev/updraft/internal/fsstore"
)

func cmdVarsSet(ctx context.Context, a *App, args []string) error {
	if len(args) != 2 {
		return usagef("name a variable and its value")
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := eng.SetVariable(ctx, args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "set %s\n", args[0])
	return nil
}

func cmdVarsGet(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.GetVariable(ctx, args[0])
	if errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("variable %q is not set (set it with `updraft vars set %s VALUE`)", args[0], args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stdout, v.Value)
	return nil
}

func cmdVarsList(ctx context.Context, a *App, args []string) error {
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	vs, err := st.ListVariables(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VARIABLE\tVALUE")
	for _, v := range vs {
		fmt.Fprintf(w, "%s\t%s\n", v.Name, v.Value)
	}
	return w.Flush()
}

func cmdVarsDelete(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	err = st.DeleteVariable(ctx, args[0])
	if errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("variable %q is not set", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "deleted %s\n", args[0])
	return nil
}
