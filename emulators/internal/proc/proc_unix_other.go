//go:build unix && !linux

package proc

import (
	"os/exec"
	"syscall"
)

// Start starts cmd in its own process group.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return cmd.Start()
}
