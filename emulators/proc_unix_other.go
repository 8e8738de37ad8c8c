//go:build !linux

package emulators

// ownsListeners cannot be checked here; see proc_linux.go.
func ownsListeners(pid int, ports []int) bool { return true }
