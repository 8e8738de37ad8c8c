//go:build !linux

package proctree

import "syscall"

const supported = false

// Init must be the first call in main (and in TestMain) of a binary that starts process
// trees. Outside Linux there is no supervisor: commands run directly in their own group.
func Init() { armed = true }

func supervisorAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func directAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killTree(pid int) { signalGroup(pid, syscall.SIGKILL) }

// Alive reports whether a process runs.
func Alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// StartTime is unknown outside Linux.
func StartTime(int) string { return "" }

// Supervisors finds nothing outside Linux.
func Supervisors(string) []int { return nil }
