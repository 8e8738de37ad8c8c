// Package fsstore keeps Updraft's state in Firestore: DAGs and their versions, runs, task
// instances and attempts. It is a thin adapter: it translates between the scheduler's records
// and Firestore documents, offers the conditional writes the engine's correctness rests on
// (Create, and updates with a last-update-time precondition), and maps gRPC codes to the
// errors callers branch on. It makes no decisions.
package fsstore
