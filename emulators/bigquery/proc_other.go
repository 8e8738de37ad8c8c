//go:build !unix

package bqemu

import (
	"os"
	"os/exec"
)

func prepareCmd(*exec.Cmd) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// Without process groups, the pid is the emulator itself.
func terminateGroup(pid int) error { return killGroup(pid) }

func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}
