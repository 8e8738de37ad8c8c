package access

import "testing"

// TestClientAddrTrustsOnlyTheFrontEndsEntry: the audit address is the entry Google's front
// end appended (the rightmost), never one the client wrote.
func TestClientAddrTrustsOnlyTheFrontEndsEntry(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		xff    []string
		remote string
		want   string
	}{
		{nil, "203.0.113.9:51234", "203.0.113.9"},
		{[]string{"198.51.100.7"}, "169.254.1.1:443", "198.51.100.7"},
		{[]string{"10.0.0.1, 198.51.100.7"}, "169.254.1.1:443", "198.51.100.7"},   // a forged first hop
		{[]string{"10.0.0.1", "198.51.100.7"}, "169.254.1.1:443", "198.51.100.7"}, // two headers
		{[]string{"10.0.0.1, 198.51.100.7, "}, "x", "198.51.100.7"},
		{[]string{"2001:db8::1"}, "[::1]:80", "2001:db8::1"},
		{nil, "[2001:db8::2]:80", "2001:db8::2"},
	} {
		if got := ClientAddr(c.xff, c.remote); got != c.want {
			t.Errorf("ClientAddr(%q, %q) = %q, want %q", c.xff, c.remote, got, c.want)
		}
	}
}
