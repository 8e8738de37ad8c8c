// Package runjobs is the adapter to the Cloud Run Admin API v2 for Updraft's worker jobs: it
// starts the execution that runs one attempt of a container task (RunJob on the worker job of
// the task's resource class, with UPDRAFT_ATTEMPT and a timeout override), and implements
// engine.Executor over the executions (GetExecution, CancelExecution) for the tick's
// lost-worker check and for cancellations.
//
// It is thin: it translates between Updraft's values (attempt references, resource classes,
// durations) and the SDK's (cloud.google.com/go/run/apiv2), and maps gRPC codes once, here,
// to the engine's errors: a code another try can't fix (NotFound, InvalidArgument,
// PermissionDenied, FailedPrecondition, Unauthenticated) wraps engine.ErrCannotStart; any
// other is transient and returned as is, so the caller asks Pub/Sub to redeliver. No SDK type
// leaves the package.
//
// It also holds the cloudrun.job task type (cloudrun.go, cloudrun_defer.go: run a Cloud Run
// job of the user's and wait for its execution), which connects with the same client set-up
// as the Executor (clients), and CancelDeferred, which cancels such an execution for the
// engine (internal/tasktypes.JobCanceller).
//
// With UPDRAFT_CLOUDRUN_EMULATOR_HOST set (runemu.EnvVar) it talks plain gRPC to the local
// stand-in (emulators/cloudrun), else to the regional endpoint REGION-run.googleapis.com:443
// with the default credentials.
//
// Its import rules are rows of the table in internal/layers (rules.go). Its imports of the
// engine (its interfaces and errors) and of tasks (the worker contract's encoding,
// tasks.EncodeAttempt) are listed there as tolerated debt: an adapter should not reach the
// engine.
package runjobs
