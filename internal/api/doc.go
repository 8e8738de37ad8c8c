// Package api serves Updraft's JSON REST API under /api/v1: a thin HTTP layer over package
// console, which authorises every call and records every action. It reads the caller's
// identity from the request (put there by package auth), checks CSRF tokens on state-changing
// browser requests, and maps console errors to one error shape:
//
//	{"error": {"code": "not_found", "message": "..."}}
//
// docs/openapi.yaml documents every route. Its import rules are rows of the table in
// internal/layers (rules.go).
package api
