package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/cloudlog"
	"github.com/updraft-dev/updraft/internal/runner"
)

// Environment the runner reads besides the worker job's contract (which it reads the same
// way: GOOGLE_CLOUD_PROJECT, UPDRAFT_LEASE, UPDRAFT_LOG_DIR, what the task types read, …).
const (
	// EnvRunnerConcurrency bounds the attempts one runner instance runs at once (default 1);
	// Terraform sets it to the service's max_instance_request_concurrency.
	EnvRunnerConcurrency = "UPDRAFT_RUNNER_CONCURRENCY"
	// EnvListenFDs = "1" hands the runner a listening socket as fd 3 (the Cloud Run
	// stand-in's way, so the port is bound before the process starts); otherwise it listens
	// on HOST:PORT (PORT default 8080, as Cloud Run sets it).
	EnvListenFDs = "LISTEN_FDS"
)

// shutdownWait bounds how long a stopping runner waits for its attempts to record their
// outcomes; Cloud Run gives an instance 10 s after SIGTERM.
const shutdownWait = 9 * time.Second

// RunnerArg is the argument that makes a worker binary the warm runner service
// (`updraft-worker runner`): the runner's Cloud Run service runs the worker job's image with it.
const RunnerArg = "runner"

// RunnerRefPrefix starts the executor ref of an attempt the warm runner runs.
const RunnerRefPrefix = runner.RefPrefix

// RunRunner serves the warm runner (Runner) until ctx ends: the worker's clients opened once
// from the environment, every request checked by the push subscription's OIDC token
// (auth.InvokersFromEnv: UPDRAFT_OIDC_AUDIENCE and UPDRAFT_OIDC_INVOKERS; UPDRAFT_AUTH=off
// only locally), then the attempt run inside it. When ctx ends the running attempts are
// stopped, their outcomes recorded, and RunRunner returns.
func RunRunner(ctx context.Context, a Streams) error {
	log := cloudlog.New(a.Stderr)
	concurrency := 1
	if v := a.Getenv(EnvRunnerConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("runner: %s=%q is not a number from 1 to 1000", EnvRunnerConcurrency, v)
		}
		concurrency = n
	}
	project := a.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		return errors.New("runner: GOOGLE_CLOUD_PROJECT is not set")
	}
	guard, err := auth.InvokersFromEnv(ctx, a.Getenv, log)
	if err != nil {
		return fmt.Errorf("runner: %w", err)
	}
	ln, err := runnerListener(a.Getenv)
	if err != nil {
		return err
	}
	defer ln.Close()
	o, err := openWorker(ctx, a, project, log)
	if err != nil {
		return err
	}
	defer o.close()
	w, name := o.w, o.w.Name
	w.Name = "runner:" + name
	w.ExecutorRef = runner.RefPrefix + a.Getenv("K_REVISION") + ":" + name
	rn := runner.New(ctx, w, concurrency)
	srv := &http.Server{Handler: guard.Middleware(rn), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("updraft runner serving", "addr", ln.Addr().String(), "concurrency", concurrency)
	select {
	case err := <-served:
		return fmt.Errorf("runner: serve: %w", err)
	case <-ctx.Done():
	}
	// ctx is done: the attempts are being stopped and record their outcomes; answer them.
	sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	err = srv.Shutdown(sctx)
	rn.Wait()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("runner: shut down: %w", err)
	}
	return nil
}

// runnerListener is fd 3 when LISTEN_FDS=1, else HOST:PORT.
func runnerListener(getenv func(string) string) (net.Listener, error) {
	if getenv(EnvListenFDs) == "1" {
		f := os.NewFile(3, "runner-listener")
		ln, err := net.FileListener(f)
		f.Close() // ln holds its own descriptor (close-on-exec); tasks must not inherit fd 3
		if err != nil {
			return nil, fmt.Errorf("runner: %s=1 but fd 3 is not a listening socket: %w", EnvListenFDs, err)
		}
		return ln, nil
	}
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(getenv("HOST"), port))
	if err != nil {
		return nil, fmt.Errorf("runner: listen on PORT %s: %w", port, err)
	}
	return ln, nil
}
