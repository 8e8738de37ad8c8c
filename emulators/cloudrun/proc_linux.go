package runemu

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// Pdeathsig fires when the *thread* that forked the child exits, and the Go runtime ends a
// thread when a goroutine locked to it returns without unlocking (golang.org/issue/27505). So
// every execution is forked from one goroutine that stays locked to its thread for the life of
// the process.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startCmd starts cmd with Pdeathsig=SIGKILL: if the Go process dies without Stop (a test
// timeout, a panic, kill -9), the kernel kills the execution's main process.
func startCmd(cmd *exec.Cmd) error {
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
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

// waitExited blocks until process pid (a child of ours) has exited, without reaping it: until
// it is reaped its pid, and so its process group id, can't be reused, and signalling the group
// is safe.
func waitExited(pid int) {
	const pPID = 1     // P_PID
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}
