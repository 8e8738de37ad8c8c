package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dieWithGoRun makes this process receive SIGTERM when its parent dies, if
// the parent is the go command (`go run`): go run does not forward SIGTERM to
// the program it runs, so `kill <pid of go run>` would otherwise leave this
// process, and the emulators, running.
func dieWithGoRun() {
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || filepath.Base(exe) != "go" {
		return
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		return
	}
	if os.Getppid() != ppid { // the parent died before prctl
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
