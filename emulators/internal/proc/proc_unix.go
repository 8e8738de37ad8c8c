//go:build unix

package proc

import (
	"errors"
	"syscall"
)

// signalGroup sends sig to the process group led by pid; a group already gone is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// TerminateGroup sends SIGTERM to the process group led by pid.
func TerminateGroup(pid int) error { return signalGroup(pid, syscall.SIGTERM) }

// KillGroup sends SIGKILL to the process group led by pid.
func KillGroup(pid int) error { return signalGroup(pid, syscall.SIGKILL) }
