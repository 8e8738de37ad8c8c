//go:build !unix

package bqemu

import "context"

// lockFile is a no-op where flock is missing: concurrent first builds then
// each build, and the last rename wins (the binary is still complete).
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
