// Package web is Updraft's browser UI: server-rendered pages (html/template, with their
// templates, CSS and a little JavaScript embedded) over package console, with the REST API
// mounted under /api/v1/.
//
// Pages read through the console, which authorises every call; the pages hide what the
// caller's role can't do, but the console and the API are the gate. Every state-changing
// action goes through the API from the browser: a confirm dialog first asks the API for the
// action's dry-run preview (what it would affect), then POSTs with the CSRF token. A page
// that shows something unfinished (a running run's grid, a running attempt's log) polls
// its own fragment with If-None-Match and swaps it in when it changed.
//
// Everything goes through the console. Its import rules are rows of the table in
// internal/layers (rules.go).
package web
