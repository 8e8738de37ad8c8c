// Package runner is the warm runner's request handler: the Cloud Run service (`updraft-worker
// runner`, see worker.RunRunner) takes an attempt pushed by Pub/Sub and runs it inside the
// request with the same worker code as a job execution (taskrun.Worker), a bounded number at
// once; a redelivery of an attempt already claimed runs nothing and answers success.
// docs/execution.md says which attempts Dispatch sends here.
//
// It lives apart from taskrun so that only the worker binary links an HTTP handler that runs
// attempts.
package runner
