// Package tasks holds Updraft's task types and the worker runtime that executes one attempt:
// claim it, run its type with a timeout while renewing the lease, keep its log, record the
// result and do the fast-follow for its downstream. The same runtime serves a Cloud Run job
// execution, a local worker subprocess and an inline run in the dispatcher.
package tasks
