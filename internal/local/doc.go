// Package local runs Updraft on one machine, on the emulators: a dispatcher that runs inline
// task types in-process and starts the worker binary as a subprocess for container types
// (with exactly the environment a Cloud Run job execution gets), the advancer on the events
// topic, and a ticker in place of Cloud Scheduler.
package local
