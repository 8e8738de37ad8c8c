// Package psqueue is Updraft's Pub/Sub adapter: the tasks topic (ready attempts, consumed by
// the dispatcher) and the events topic (finished tasks, consumed by the advancer). It moves
// bytes; the engine decides what they mean. Its client is also the one the pubsub.publish
// task type publishes with (Queue.Client, for internal/psqueue/pspublish only).
package psqueue
