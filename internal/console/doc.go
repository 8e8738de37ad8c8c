// Package console holds the operations the UI, the REST API and the CLI call (Operations:
// the CLI's local mode binds a Console to its caller with As): reads of DAGs, runs,
// tasks, attempts, logs, variables, users and the audit log, and the actions (trigger, pause,
// clear, mark, backfill, variables, grants, DAG deploys), each with a dry-run preview.
//
// Every method takes the Caller and authorises it first (the console is the gate: the UI and
// the API only translate HTTP); every action, taken, refused or failed, is recorded in the
// audit log. Errors are *Error values with a code and an HTTP status.
//
// The web and api packages sit on top of it. Its import rules are rows of the table in
// internal/layers (rules.go).
package console
