package runemu

import (
	"syscall"
	"unsafe"
)

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
