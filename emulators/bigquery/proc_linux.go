package bqemu

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the emulator if the Go process
// dies without calling Stop (a test timeout, a panic, SIGKILL).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// Pdeathsig fires when the thread that forked the child exits, and the Go
// runtime ends a thread when a goroutine locked to it returns
// (golang.org/issue/27505). So emulators are forked from one goroutine that
// stays locked to its thread for the life of the process.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{cmd, done}
	return <-done
}
