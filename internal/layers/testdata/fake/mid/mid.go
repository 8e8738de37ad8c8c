// Package mid is a fake library that reaches the fake emulator.
package mid

import "example.com/fake/emulators/fakeemu"

// Run starts the emulator.
func Run() { fakeemu.Start() }
