package emulators

import (
	"os"
	"strconv"
	"strings"
)

// ownsListeners reports whether process pid listens on every one of ports
// (TCP). A port picked free can be taken by another process before the JVM
// binds it; if that process is another emulator, it answers "Ok" in our
// JVM's place, so readiness also requires the listening sockets to be ours.
// If /proc/net is unreadable, it reports true (cannot tell).
func ownsListeners(pid int, ports []int) bool {
	want := map[uint64]bool{}
	for _, p := range ports {
		want[uint64(p)] = true
	}
	inodes := map[string]uint64{} // socket inode -> port, for LISTEN sockets on wanted ports
	readable := false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		readable = true
		for line := range strings.Lines(string(data)) {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			i := strings.LastIndexByte(fields[1], ':')
			port, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
			if err == nil && want[port] {
				inodes[fields[9]] = port
			}
		}
	}
	if !readable {
		return true
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	found := map[uint64]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fdDir + "/" + fd.Name())
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			if port, ok := inodes[strings.TrimSuffix(inode, "]")]; ok {
				found[port] = true
			}
		}
	}
	return len(found) == len(want)
}
