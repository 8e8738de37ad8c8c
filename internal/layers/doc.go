// Package layers states Updraft's import rules as a table (Rules, in rules.go) and checks
// them over the module's package graph. Its test loads the module once with go/packages and
// fails on any violation, naming the rule, the importer, the forbidden package and the chain
// of imports that reaches it; docs/architecture.md shows the same table.
//
// Each rule says which packages it covers, what they must not import (directly) or reach
// (through any chain of imports), and why. Where today's code breaks a rule the rule lists the
// offending import edges as exemptions, each with a comment: the debt stays visible, and an
// exemption that is no longer needed fails the test too, so the table shrinks as the code
// is fixed.
//
// Check works on any Graph, so its own tests run it over made-up graphs and a small module in
// testdata. The package has no code that other packages call: only its tests run.
package layers
