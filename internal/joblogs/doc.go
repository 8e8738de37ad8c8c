// Package joblogs reads a Cloud Run job execution's container output, so a cloudrun.job
// task can copy it into the attempt's own log (and so into `updraft logs`, the task page and
// the API) instead of leaving it behind a link.
//
// The output is read from Cloud Logging with logadmin, by the labels Cloud Run gives every
// line of an execution (resource.type "cloud_run_job", resource.labels.job_name and
// location, labels."run.googleapis.com/execution_name"). Locally the same client reads the
// Logging stand-in (emulators/logging, which the Cloud Run stand-in feeds), found through
// UPDRAFT_LOGGING_EMULATOR_HOST: there is one code path.
//
// It must not import the tasks, engine or stand-in packages: tasks imports it.
package joblogs
