// Command updraft-worker executes one attempt, named by UPDRAFT_ATTEMPT: the entry point of
// the worker Cloud Run jobs, and of the subprocesses the local dispatcher starts.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/updraft-dev/updraft/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&cli.App{Stdout: os.Stdout, Stderr: os.Stderr}).Run(ctx, []string{"worker"})
	stop()
	os.Exit(code)
}
