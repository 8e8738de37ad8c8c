// Package cli is the `updraft` command: validating and deploying DAGs, schedule previews,
// the local dev stack, test runs, triggers, runs, logs, and the worker entry point. It wires
// the packages together; the logic lives in them.
package cli
