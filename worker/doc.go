// Package worker is the Updraft worker's entry point, for custom worker builds.
//
// The stock worker (cmd/updraft-worker, and `updraft worker`) runs every built-in task type.
// A `go` task (Airflow's PythonOperator) calls a Go function by name, so it needs a worker
// that contains that function: a small main package of your own that registers its functions
// with tasks.Register and then hands over to Main.
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/updraft-dev/updraft/tasks"
//		"github.com/updraft-dev/updraft/worker"
//	)
//
//	func main() {
//		tasks.Register("dedupe_orders", func(ctx context.Context, tc *tasks.Context) (any, error) {
//			…
//		})
//		worker.Main()
//	}
//
// The binary built from it is a drop-in replacement for the stock worker: it follows the same
// contract (the attempt in UPDRAFT_ATTEMPT, the backends from the environment, exit 0 once
// the outcome is recorded) and runs every built-in type too. Locally, point the dispatcher at
// it with UPDRAFT_WORKER_CMD; on GCP, it is the worker Cloud Run job's image.
// examples/go-worker is a complete example and docs/tasks/go.md the guide.
//
// Main's first step is internal/proctree's Init: the worker re-executes its own binary as
// the supervisor of each shell task's process tree (so the tree dies with its task, and with
// the worker), and in that role the process never gets past Init. Do nothing in main before
// Main but register functions.
//
// Run is the worker process: it opens the store, the queue and Secret Manager from the
// environment and executes the attempt (or, as a warm worker of the local dispatcher's pool,
// every attempt it is sent) with the internal runtime (internal/taskrun) and every built-in
// task type (internal/tasktypes).
//
// A custom worker lives in a Go module of its own, which can import this package and tasks
// but none of Updraft's internal/ packages: nothing exported here or in tasks mentions an
// internal type (tasks/plugin_api_test.go fails if one does). Main wires it to the process (signals,
// standard streams, exit code). Only entry points import this package: cmd/updraft-worker,
// custom workers' main packages, and the CLI's `updraft worker`. A worker binary carries no
// dev-only package (the CLI, the local stack, the web UI, the emulators). Both are rows of the
// table of import rules in internal/layers (rules.go).
package worker
