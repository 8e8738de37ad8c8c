//go:build !unix

package proc

import (
	"errors"
	"os"
	"os/exec"
)

// Start starts cmd; without process groups the child is started directly, so killing it is
// enough.
func Start(cmd *exec.Cmd) error { return cmd.Start() }

// TerminateGroup kills the process (no process groups here).
func TerminateGroup(pid int) error { return KillGroup(pid) }

// KillGroup kills the process.
func KillGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
