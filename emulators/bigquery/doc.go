// Package bqemu builds, starts and stops the local BigQuery emulator,
// github.com/goccy/bigquery-emulator (pinned at Version), for tests and local
// development. Google ships no BigQuery emulator.
//
// The emulator is a large Go program (GoogleSQL and SQLite compiled from
// WebAssembly to Go, so it needs no C compiler): a cold build took 4 to 10
// minutes and 6.5 GB of memory (one package, github.com/goccy/go-googlesql,
// compiles for minutes on one core), a rebuild with a warm Go build cache
// about 15-30 s. EnsureBuilt therefore builds it once, from the separate tools module
// in ./tools (its own go.mod and go.sum, so the main module neither depends on
// the emulator's packages nor builds them), into a cache shared by every test
// binary and later run:
//
//	${UPDRAFT_CACHE:-$HOME/.cache/updraft}/bin/bigquery-emulator-v0.8.1
//
// UPDRAFT_BIGQUERY_EMULATOR, when set, names a binary to use instead.
//
// # Connecting a client
//
// cloud.google.com/go/bigquery (v1.86) has no emulator variable of its own:
// nothing in it reads BIGQUERY_EMULATOR_HOST. Updraft uses that name (EnvVar)
// for the emulator's REST host, and a client connects with
//
//	bigquery.NewClient(ctx, project,
//		option.WithEndpoint("http://"+host),
//		option.WithoutAuthentication())
//
// which is what Emulator.ClientOptions returns. The gRPC port (GRPCHost) serves
// only the BigQuery Storage read/write API.
//
// # One project
//
// The emulator serves the one project it was started with (--project); every
// request naming another project fails with 404 "project X is not found".
// Give each test its own dataset instead of its own project.
//
// # What the emulator does and does not do (v0.8.1, pinned by the tests)
//
//   - Works: datasets and tables, query jobs with a client-chosen job id,
//     jobs.get, jobs.cancel, query results, named query parameters, labels on
//     jobs, DDL, DML, MERGE from a table, a query with a destination table
//     (created when missing).
//   - MERGE ... USING (subquery) fails ("source must be a single-table
//     reference"): merge from a staging table.
//   - A query job's writeDisposition is ignored: WRITE_TRUNCATE and
//     WRITE_EMPTY append like WRITE_APPEND (load jobs do honour it).
//   - jobs.insert with an id that already exists fails with HTTP 400
//     jobInternalError "job ID is already created", not 409 duplicate; the
//     repeated statement is rolled back, so it has no effect.
//   - jobs.insert runs the query synchronously and returns the job DONE: there
//     is never a running job to wait for or cancel. Proxy (proxy.go) holds jobs
//     RUNNING in front of the emulator, so long jobs can be tested for real.
//   - A failed query's error has reason "jobInternalError", no location, and
//     a message such as "failed to analyze: Unrecognized name: foo [at 1:8]"
//     (BigQuery: reason "invalidQuery", location "query"). The jobs.insert
//     answer and getQueryResults carry it; jobs.get drops it (the job reads
//     DONE without an error).
//   - Every job's statementType is "SELECT" and DML reports no affected rows.
//   - A partition decorator is taken as part of the table name:
//     destination table$20250101 creates a table named "table$20250101".
//   - No INFORMATION_SCHEMA.JOBS (only SCHEMATA, TABLES, TABLE_OPTIONS,
//     COLUMNS), no partition pruning or _PARTITIONTIME, no copy jobs, no IAM,
//     no time travel.
//
// # The front
//
// Start puts a small HTTP front (front.go) before the emulator, and Emulator.Host
// (EnvVar, ClientOptions) is the front's address; RawHost is the emulator's own.
// The front gives the emulator BigQuery's behaviour where Updraft's code depends
// on it, so that code (internal/bq) has no emulator case: a query job's write
// disposition is honoured (truncate empties the destination first, empty refuses a
// table with rows, 409 "Already Exists: Table"), a duplicate job id answers 409
// duplicate, and a query of INFORMATION_SCHEMA.PARTITIONS answers 400 invalidQuery
// "needs real BigQuery". The tests pin both: the emulator's own behaviour through
// RawHost, the front's through Host.
//
// It runs the emulator as a binary. Its import rules are rows of the table in internal/layers
// (rules.go).
package bqemu
