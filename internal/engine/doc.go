// Package engine applies the scheduler's decisions to the store and the queue: it deploys
// DAGs, runs the tick (due schedules, unclaimed attempts, retries), creates runs, queues and
// publishes ready tasks, lets workers claim attempts and record results, and advances runs
// (the fast-follow after every finished task).
//
// Every state change is a conditional write on the one document it changes (Create, or an
// update with a last-update-time precondition, re-read and decided again on conflict), so any
// number of ticks, workers and advancers may run at once and messages may arrive twice or out
// of order.
package engine
