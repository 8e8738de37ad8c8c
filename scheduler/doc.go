// Package scheduler is Updraft's pure core for runs and tasks: the run and task-instance state
// machine, trigger rules, retry policy, run ids and document keys, and the tick's planning
// (which runs are due, given a DAG's schedule state and the current time).
//
// It takes values and the current time as arguments and returns decisions, and does no I/O:
// the engine package applies its decisions to Firestore and Pub/Sub. Its import rules (the
// pure core's) are rows of the table in internal/layers (rules.go).
package scheduler
