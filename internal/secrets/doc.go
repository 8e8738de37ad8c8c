// Package secrets is Updraft's Secret Manager adapter. Client reads and writes secrets (the
// latest version of each); Resolver is what one attempt uses at run time: it resolves
// `{{ secret "NAME" }}`, connections (secrets named updraft-connections-ID, in Airflow's JSON or
// URI format) and variable overrides (secrets named updraft-variables-NAME), caches what it
// read, and remembers every value it returned so the worker can mask them.
//
// Secrets are read only where a task runs, with that component's service account. When
// UPDRAFT_SECRETMANAGER_EMULATOR_HOST is set the client talks to the local stand-in
// (emulators/secretmanager) instead of Google.
//
// The package is a thin adapter: it maps gRPC codes to ErrNotFound and to errors that say how
// to fix things, and no Secret Manager type leaves it. The stand-in is started by its tests
// only. Its import rules are rows of the table in internal/layers (rules.go), where its import
// of tasks (for the Resolver and Connection types) is tolerated debt: tasks reaches the engine.
package secrets
