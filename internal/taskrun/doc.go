// Package taskrun is Updraft's task runtime: the worker that executes one attempt (claim it,
// run its type with a timeout while renewing the lease, keep its log, record the result and
// do the fast-follow for its downstream), the task types' Context, Type and Registry, and the
// built-in types that need no cloud SDK. The same runtime serves a Cloud Run job execution, a
// local worker subprocess and an inline run in the dispatcher.
//
// It is internal: a custom worker's module uses the plug-in API in package tasks (Register,
// tasks.Context), which the `go` type here bridges to (pluginContext). The SDK-backed types
// live with their adapters and are put together with these in internal/tasktypes.
package taskrun
