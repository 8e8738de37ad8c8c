// Package render renders the strings of a task's `with` as Go text/templates over Airflow's
// context (`.ds`, `.logical_date`, `.params`, `.dag_run`, `.ti`, …), with times in the DAG's
// timezone, and the template functions DAG files may call (var, secret, conn, xcom, date
// helpers, json/toJSON). Functions that need the outside world (variables, secrets,
// connections, XCom) are injected as Lookups, so this package does no I/O. It is part of the
// pure core; its import rules are rows of the table in internal/layers (rules.go).
package render
