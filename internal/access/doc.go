// Package access decides who may do what in Updraft. Roles are viewer < operator < admin,
// held by email (DESIGN.md, "UI, API, access"); a DAG's owner is an operator of that DAG
// whatever role they hold. Decide is the pure rule, testable with plain values; Service
// applies it over the store (grants in Firestore's `users` collection) and keeps the audit
// log (`audit`): every grant, revoke and every action taken or refused through Slack, and
// later the API and the UI.
//
// Its import rules are rows of the table in internal/layers (rules.go).
package access
