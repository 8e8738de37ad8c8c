package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/updraft-dev/updraft/internal/cloudlog"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// Streams are a worker process's environment and standard streams.
type Streams struct {
	Getenv         func(string) string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run executes the attempt in UPDRAFT_ATTEMPT: the contract is the same for a Cloud Run job
// execution and a local subprocess. It returns nil once the attempt's outcome is recorded,
// whatever it was. With tasks.EnvWorkerServe set it is a warm worker of the local
// dispatcher's pool instead, running every attempt it is sent until its input ends.
func Run(ctx context.Context, a Streams) error {
	serve := a.Getenv(tasks.EnvWorkerServe) != ""
	var ref scheduler.AttemptRef
	if !serve {
		var err error
		if ref, err = tasks.DecodeAttempt(a.Getenv(tasks.EnvAttempt)); err != nil {
			return err
		}
	}
	project := a.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		return fmt.Errorf("GOOGLE_CLOUD_PROJECT is not set")
	}
	log := cloudlog.New(a.Stderr)
	o, err := openWorker(ctx, a, project, log)
	if err != nil {
		return err
	}
	defer o.close()
	st, q, cfg, w := o.st, o.q, o.cfg, o.w
	w.ExecutorRef = a.Getenv("CLOUD_RUN_EXECUTION")
	if w.ExecutorRef == "" {
		w.ExecutorRef = proctree.Ref(os.Getpid())
	}
	// UPDRAFT_WORKER_STATS: the store operations of each attempt (a warm worker's since its
	// previous report), for updraft-bench.
	// UPDRAFT_WORKER_STATS=trace adds them by operation ("updraft-worker-op N KIND BY via CALL").
	var last [4]int64
	trace := a.Getenv("UPDRAFT_WORKER_STATS") == "trace"
	if trace {
		st.TraceOps()
	}
	stats := func() {
		if a.Getenv("UPDRAFT_WORKER_STATS") == "" {
			return
		}
		if trace {
			for k, n := range st.OpCounts() {
				fmt.Fprintf(a.Stderr, "updraft-worker-op %d %s\n", n, k)
			}
			st.TraceOps()
		}
		r, wr := st.Counts()
		c, ab := st.Contention()
		now := [4]int64{int64(r), int64(wr), int64(c), int64(ab)}
		fmt.Fprintf(a.Stderr, "updraft-worker-stats reads=%d writes=%d conflicts=%d aborted=%d\n", now[0]-last[0], now[1]-last[1], now[2]-last[2], now[3]-last[3])
		last = now
	}
	if serve {
		// A warm worker's engine also tells its pool of each task message it publishes.
		w.Engine = engine.New(st, kickingPublisher{publisher: q, kick: doneFile()}, cfg, nil, log)
		return serveAttempts(ctx, w, a.Stdin, doneFile(), stats)
	}
	err = w.Execute(ctx, ref)
	stats()
	return err
}

// opened is what a worker process runs attempts with: its store, queue and engine config, and
// the worker over them; close releases them.
type opened struct {
	st    *fsstore.Store
	q     *psqueue.Queue
	cfg   engine.Config
	w     *taskrun.Worker
	close func()
}

// openWorker opens the store, the queue and the secrets of project for a worker process (a
// job execution, a warm local worker or the runner service); the caller sets ExecutorRef.
func openWorker(ctx context.Context, a Streams, project string, log *slog.Logger) (*opened, error) {
	cfg, err := engine.ConfigFromEnv(a.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		return nil, err
	}
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		st.Close()
		return nil, err
	}
	newResolver, closeSecrets, err := secrets.Factory(ctx, project, a.Getenv)
	if err != nil {
		q.Close()
		st.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	w := &taskrun.Worker{
		Engine:   engine.New(st, q, cfg, nil, log),
		Registry: tasktypes.WithQueue(q), Name: host + ":" + strconv.Itoa(os.Getpid()),
		LogDir: a.Getenv("UPDRAFT_LOG_DIR"), Stdout: a.Stdout, Log: log,
		NewResolver: newResolver, Getenv: a.Getenv,
	}
	return &opened{st: st, q: q, cfg: cfg, w: w, close: func() { closeSecrets(); q.Close(); st.Close() }}, nil
}
