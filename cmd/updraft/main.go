// Command updraft is Updraft's CLI: DAGs, schedules, the local dev stack, test runs,
// triggers, runs, logs, and the worker entry point.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/updraft-dev/updraft/internal/cli"
	"github.com/updraft-dev/updraft/internal/proctree"
)

func main() {
	proctree.Init() // first: this binary is also the supervisor of the tasks' process trees
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&cli.App{Stdout: os.Stdout, Stderr: os.Stderr, Name: cli.NameAsRun(os.Args[0])}).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
