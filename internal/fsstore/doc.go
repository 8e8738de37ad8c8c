// Package fsstore keeps Updraft's state in Firestore: DAGs and their versions, runs, task
// instances and attempts. It is a thin adapter: it translates between the scheduler's records
// and Firestore documents, offers the conditional writes the engine's correctness rests on
// (Create, and updates with a last-update-time precondition), and maps gRPC codes to the
// errors callers branch on. It makes no decisions.
//
// # Conformance suite
//
// The package's own tests (`go test ./internal/fsstore/`, package fsstore_test) check these
// guarantees against the Firestore emulator, one project per test, through the exported API
// only:
//
//   - creates: the second create of a document is ErrExists and the first writer's value
//     stays (create_test.go); concurrent claims have exactly one winner (contention_test.go);
//   - conditional writes: an update or delete with a stale update time is ErrConflict, also
//     when the document is gone, and changes nothing; the update time a write returns is the
//     document's new version (conditional_test.go, delete_test.go);
//   - batches (UpdateTaskInstancesIf, UpdateDAGsIf, CreateRunsAtOnce): all or nothing,
//     bounded by MaxBatch, and creates keep the documents that exist (batch_test.go);
//   - a task instance's first transition (a zero update time: the instance has no document,
//     it is `none`) creates it, the base record with the transition's fields, in
//     ApplyTransitionOn, UpdateTaskInstancesIf and CommitFinish alike; a second create is
//     ErrConflict and writes nothing, and updates at a stale time still conflict
//     (lazy_test.go);
//   - contention: racing writers on one version have one winner per round, and read-modify-
//     write loops that re-read on ErrConflict lose no update (contention_test.go);
//   - aggregations: counts and sums with their filters (aggregate_test.go);
//   - due-range queries: a document due exactly at now is read, one due a microsecond later
//     is not, one without a due time (a paused or pruned DAG) never; oldest first within the
//     limit; paging through ties reads each document once (due_test.go);
//   - expiry: runs and task instances (which hold their attempts) are refused without expire_at, and every
//     collection with a TTL policy in infra/ keeps it in the expire_at timestamp (ttl_test.go);
//   - the health probe and Transient (health_test.go, transient_test.go).
//
// Callers (the engine, the alerter, the console) rely on these and need not test them again.
package fsstore
