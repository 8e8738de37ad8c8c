package worker

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/updraft-dev/updraft/internal/proctree"
)

// Main executes the attempt named by UPDRAFT_ATTEMPT, as `updraft worker` does, or with the
// argument `runner` (RunnerArg) serves the warm runner service (RunRunner), and exits the
// process: 0 once the attempt's outcome is recorded (whatever it was), non-zero when it could
// not be. SIGINT and SIGTERM (Cloud Run stopping the execution) cancel the attempt, whose
// result is still recorded. Call it last in main, after registering functions with
// tasks.Register; it never returns.
func Main() {
	proctree.Init() // first: this binary is also the supervisor of the tasks' process trees
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	streams := Streams{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	var err error
	if mode == RunnerArg { // the warm runner service (runner.go)
		err = RunRunner(ctx, streams)
	} else {
		err = Run(ctx, streams)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "updraft worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
