package taskrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// EnvHTTPAllow names the egress allow-list of the http and sensor.http types: comma-separated
// CIDR ranges or addresses (10.20.0.0/16, 192.168.1.7) and the word "loopback" (127.0.0.0/8
// and ::1, which the local stack sets for its stand-ins and sample API).
const EnvHTTPAllow = "UPDRAFT_HTTP_ALLOW"

// blockedNames are host names refused before any lookup: Google's metadata server.
var blockedNames = []string{"metadata.google.internal", "metadata.google.internal.", "metadata", "metadata.goog"}

// blockedRanges are the addresses the http types refuse unless allow-listed: loopback,
// link-local (169.254.169.254 is the metadata server), private (RFC 1918, fc00::/7), shared
// address space (CGNAT), "this network", multicast and the other special ranges.
var blockedRanges = mustPrefixes(
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b::/96",
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// EgressError is the refusal of a connection by the egress policy. It happens before any
// packet is sent.
type EgressError struct {
	Host string     // the host name or address the request named
	Addr netip.Addr // the address it resolved to (invalid when refused by name)
}

func (e *EgressError) Error() string {
	target := e.Host
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		target = fmt.Sprintf("%s (%s)", e.Host, e.Addr)
	}
	return fmt.Sprintf("refused to connect to %s: tasks may not reach metadata, loopback, link-local or private addresses "+
		"(Updraft's egress policy, docs/security.md); if this is a private endpoint your team uses, "+
		"allow its range on the workers and Dispatch with %s=10.20.0.0/16 (comma-separated CIDRs)", target, EnvHTTPAllow)
}

// egressPolicy decides which addresses the http types may connect to.
type egressPolicy struct{ allow []netip.Prefix }

// parseEgressAllow reads EnvHTTPAllow's value.
func parseEgressAllow(s string) (egressPolicy, error) {
	var p egressPolicy
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "loopback":
			p.allow = append(p.allow, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
		case strings.Contains(f, "/"):
			pr, err := netip.ParsePrefix(f)
			if err != nil {
				return p, fmt.Errorf("%s: %q is not a CIDR range like 10.20.0.0/16", EnvHTTPAllow, f)
			}
			p.allow = append(p.allow, pr.Masked())
		default:
			a, err := netip.ParseAddr(f)
			if err != nil {
				return p, fmt.Errorf("%s: %q is not an address or a CIDR range like 10.20.0.0/16", EnvHTTPAllow, f)
			}
			p.allow = append(p.allow, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return p, nil
}

// permits says whether the policy lets a connection to a through.
func (p egressPolicy) permits(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.allow {
		if pr.Contains(a) {
			return true
		}
	}
	for _, pr := range blockedRanges {
		if pr.Contains(a) {
			return false
		}
	}
	return a.IsGlobalUnicast()
}

// control is the dialer's check: it runs after DNS resolution, for each address tried, before
// the socket connects, so a name resolving to a refused address never reaches it, whichever
// request (the first or a redirect) dials.
func (p egressPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: unexpected address %q", address)
	}
	if !p.permits(ap.Addr()) {
		return &EgressError{Host: ap.Addr().String(), Addr: ap.Addr()}
	}
	return nil
}

// egressClient is an HTTP client that enforces the policy on every connection it makes. The
// resolver is the system's unless a test gives its own.
func (p egressPolicy) client(resolver *net.Resolver) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.control, Resolver: resolver}
	tr := &http.Transport{
		// No proxy: the policy checks the address dialled, which must be the target's.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if blockedName(host) {
				return nil, &EgressError{Host: host}
			}
			c, err := dialer.DialContext(ctx, network, addr)
			var ee *EgressError
			if errors.As(err, &ee) {
				ee.Host = host
				return nil, ee
			}
			return c, err
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if blockedName(req.URL.Hostname()) {
				return &EgressError{Host: req.URL.Hostname()}
			}
			return nil
		},
	}
}

func blockedName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range blockedNames {
		if h == strings.TrimSuffix(n, ".") {
			return true
		}
	}
	return false
}

// httpClient returns the client the http types use under the worker's allow-list
// (EnvHTTPAllow, read with getenv). The caller closes its idle connections when done.
func httpClient(getenv func(string) string) (*http.Client, error) {
	allow := ""
	if getenv != nil {
		allow = getenv(EnvHTTPAllow)
	}
	p, err := parseEgressAllow(allow)
	if err != nil {
		return nil, err
	}
	return p.client(nil), nil
}
