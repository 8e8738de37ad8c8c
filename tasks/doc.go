// Package tasks is Updraft's plug-in API for custom workers: what a Go function called by a
// `go` task (Airflow's PythonOperator, in Go) registers itself with and receives. A custom
// worker's main registers its functions with Register and hands over to worker.Main
// (docs/tasks/go.md; examples/go-worker is a complete one).
//
// A custom worker lives in a Go module of its own, which can import this package and worker
// but none of Updraft's internal/ packages; so nothing exported here mentions an internal
// type (plugin_api_test.go checks it). The function's Context is made of this package's
// small types and the public scheduler package's Run and AttemptRef. It also holds the worker
// contract's attempt encoding (EnvAttempt) and the attempt log's Logger, which the runtime
// shares.
//
// The runtime that executes an attempt (claim, render, run the type, record the result) and
// the built-in task types are internal: internal/taskrun, with the SDK-backed types next to
// their adapters (internal/bq, internal/runjobs, internal/psqueue, internal/slackapi) and
// internal/tasktypes putting the built-in registry together. This package imports no cloud
// SDK and no internal package but internal/render (masking the log).
package tasks
