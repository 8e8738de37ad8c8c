// Package cli is the `updraft` command: validating and deploying DAGs, schedule previews,
// the local dev stack, test runs, and the worker entry point. Its operations commands
// (trigger, runs, tasks, backfill, logs, vars, users, dags list/deploy/pause/unpause) are
// written once against console.Operations: the console in-process (local mode, as the local
// identity) or the REST API client (--api). It wires the packages together; the logic lives
// in them.
package cli
