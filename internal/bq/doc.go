// Package bq is Updraft's BigQuery adapter and the task types that use it: bigquery.query
// (a query job, deferred between pokes when a claim can hold its job) and
// sensor.bigquery_table (a table, or one of its partitions, has rows). It translates between
// the task's arguments and cloud.google.com/go/bigquery and maps BigQuery's errors to the
// attempt's outcome (final, retried, not yet); no SDK type leaves it. CancelDeferred cancels a
// deferred job for the engine (internal/tasktypes.JobCanceller).
//
// BIGQUERY_EMULATOR_HOST points the client at the local emulator (the SDK has no variable of
// its own). That is the only thing here that knows about the emulator: where the emulator
// differs from BigQuery, its front (emulators/bigquery) makes it behave as BigQuery, so the
// code path is the production one. It imports the task runtime (internal/taskrun) and the
// engine's job references, never internal/tasktypes (which imports it) or emulators/.
package bq
