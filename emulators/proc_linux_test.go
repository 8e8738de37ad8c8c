package emulators

import (
	"net"
	"os"
	"testing"
)

func TestOwnsListeners(t *testing.T) {
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	ports := []int{l4.Addr().(*net.TCPAddr).Port}
	// Java listens on 127.0.0.1 through an IPv6 socket (::ffff:127.0.0.1,
	// in /proc/net/tcp6): cover tcp6 too when the machine has IPv6.
	if l6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer l6.Close()
		ports = append(ports, l6.Addr().(*net.TCPAddr).Port)
	} else {
		t.Logf("no IPv6 loopback (%v): checking tcp4 only", err)
	}
	if !ownsListeners(os.Getpid(), ports) {
		t.Errorf("ownsListeners(self, %v) = false", ports)
	}
	if ownsListeners(os.Getppid(), ports) {
		t.Errorf("ownsListeners(parent, %v) = true", ports)
	}
	free, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	if ownsListeners(os.Getpid(), append(ports, free[0])) {
		t.Errorf("ownsListeners with a port nobody listens on = true")
	}
}
