package cli

import (
	"context"

	"github.com/updraft-dev/updraft/worker"
)

// cmdWorker executes the attempt in UPDRAFT_ATTEMPT (worker.Run): the contract is the same for
// a Cloud Run job execution and a local subprocess.
func cmdWorker(ctx context.Context, a *App, args []string) error {
	return worker.Run(ctx, worker.Streams{Getenv: a.Getenv, Stdin: a.Stdin, Stdout: a.Stdout, Stderr: a.Stderr})
}
