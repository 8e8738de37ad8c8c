// Package proc starts the emulators' and stand-ins' child processes so that nothing outlives
// its owner: each child leads its own process group (stopping it signals the whole group, and
// a terminal's Ctrl-C does not reach it directly), and on Linux the kernel kills it if the Go
// process dies without stopping it (a test timeout, a panic, SIGKILL).
package proc
