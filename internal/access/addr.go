package access

import (
	"net"
	"strings"
)

// ClientAddr is the address the audit log records for a request: the rightmost entry of its
// X-Forwarded-For header (xff), else the connection's peer (remoteAddr, its port dropped).
//
// On Cloud Run, Google's front end appends the address it received the request from to
// X-Forwarded-For, so the rightmost entry is the one Google saw; everything left of it was
// sent by the client and proves nothing (a client may send "X-Forwarded-For: 10.0.0.1").
// Several headers count as one list, in order.
func ClientAddr(xff []string, remoteAddr string) string {
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			if a := strings.TrimSpace(parts[j]); a != "" {
				return a
			}
		}
	}
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}
