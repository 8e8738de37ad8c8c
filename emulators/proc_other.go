//go:build !unix

package emulators

import (
	"os"
	"os/exec"
)

// Without process groups, the emulator is started without a wrapper (java
// directly), so killing the process is enough.

func prepareCmd(*exec.Cmd) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func terminateGroup(pid int) error { return killGroup(pid) }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	if err := p.Kill(); err != nil && err != os.ErrProcessDone {
		return err
	}
	return nil
}

// ownsListeners cannot be checked here; see proc_linux.go.
func ownsListeners(pid int, ports []int) bool { return true }
