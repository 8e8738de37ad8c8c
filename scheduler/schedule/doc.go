// Package schedule is Updraft's schedule maths: it parses cron expressions and presets, computes
// fire times in a DAG's IANA timezone with daylight-saving changes handled as documented on
// Cron.Next, and cuts time into Airflow-2 style data intervals (see Timetable).
//
// It is part of the pure core and does no I/O. Its import rules are rows of the table in
// internal/layers (rules.go).
package schedule
