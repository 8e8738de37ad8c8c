// Package fakeemu is a fake emulator, dev-only.
package fakeemu

// Start is a fake start.
func Start() {}
