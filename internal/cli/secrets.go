package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
	"github.com/updraft-dev/updraft/internal/secrets"
)

// maxSecretValue is Secret Manager's limit on a version's data.
const maxSecretValue = 64 << 10

// openSecrets connects to the backend's Secret Manager: the stand-in named by
// UPDRAFT_SECRETMANAGER_EMULATOR_HOST when set. On a local backend without it, it refuses
// rather than write to Google's Secret Manager by mistake.
func (a *App) openSecrets(ctx context.Context) (*secrets.Client, backend, error) {
	b, err := a.backend()
	if err != nil {
		return nil, b, err
	}
	getenv := func(k string) string {
		if v := a.Getenv(k); v != "" {
			return v
		}
		return os.Getenv(k)
	}
	if len(b.Env) > 0 && getenv(smemu.EnvVar) == "" {
		return nil, b, fmt.Errorf("the backend runs on emulators but %s is not set: start the local stack with "+
			"`make dev`, or set it to the Secret Manager stand-in's address", smemu.EnvVar)
	}
	c, err := secrets.Open(ctx, b.Project, getenv)
	return c, b, err
}

// cmdSecretsSet: `updraft secrets set NAME` reads the value from stdin (one trailing newline
// stripped), refuses an empty value and never prints the value.
func cmdSecretsSet(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one secret; its value is read from stdin, e.g. printf %%s \"$TOKEN\" | updraft secrets set NAME")
	}
	name := args[0]
	if f, ok := a.Stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(a.Stderr, "value of %s (it will show as you type; end with Enter then Ctrl-D, or pipe it in instead):\n", name)
		}
	}
	b, err := io.ReadAll(io.LimitReader(a.Stdin, maxSecretValue+3))
	if err != nil {
		return fmt.Errorf("read the value of %s from stdin: %w", name, err)
	}
	value := string(b)
	if v, ok := strings.CutSuffix(value, "\n"); ok {
		value = strings.TrimSuffix(v, "\r")
	}
	switch {
	case value == "":
		return errors.New("the value on stdin is empty: pipe it in, e.g. printf %s \"$TOKEN\" | updraft secrets set " + name)
	case len(value) > maxSecretValue:
		return fmt.Errorf("the value on stdin is over Secret Manager's limit of %d bytes", maxSecretValue)
	}
	c, bk, err := a.openSecrets(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Set(ctx, name, value); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "set %s in project %s (%d bytes)\n", name, bk.Project, len(value))
	return nil
}

// cmdSecretsList: `updraft secrets list` prints the secrets' names, one per line.
func cmdSecretsList(ctx context.Context, a *App, args []string) error {
	if len(args) != 0 {
		return usagef("secrets list takes no arguments")
	}
	c, _, err := a.openSecrets(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	names, err := c.List(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintln(a.Stdout, n)
	}
	return nil
}
