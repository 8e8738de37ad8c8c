// Package scheduler is Updraft's pure core for runs and tasks: the run and task-instance state
// machine, trigger rules, retry policy, run ids and document keys, and the tick's planning
// (which runs are due, given a DAG's schedule state and the current time).
//
// It takes values and the current time as arguments and returns decisions. It must not import
// any cloud SDK or do I/O: the engine package applies its decisions to Firestore and Pub/Sub.
package scheduler
