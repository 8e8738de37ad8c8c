// Package pspublish is the pubsub.publish task type (Airflow's PubSubPublishMessageOperator),
// beside the Pub/Sub adapter it publishes through: with the process's psqueue.Queue it uses
// that queue's client, so a process has one Pub/Sub client. It is a package of its own, not
// part of psqueue, because the engine imports psqueue and the task runtime imports the
// engine: psqueue <- engine <- taskrun <- pspublish. It must not import internal/tasktypes.
package pspublish
