//go:build unix && !linux

package emulators

import (
	"os/exec"
	"syscall"
)

func setParentDeathSignal(*syscall.SysProcAttr) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// ownsListeners cannot be checked here; see proc_linux.go.
func ownsListeners(pid int, ports []int) bool { return true }
