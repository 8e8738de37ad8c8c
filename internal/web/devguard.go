package web

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DevGuard protects the local dev server, which runs with auth off (everyone is the dev
// admin), from the browser's other tabs:
//
//   - DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and reads the
//     dev server as its own origin. The Host header still says evil.example, so only
//     requests naming localhost, 127.0.0.1, [::1] or the listen address's own host are served.
//   - Cross-site writes: a page POSTing a form to http://127.0.0.1:8080. A state-changing
//     request (anything but GET, HEAD, OPTIONS) whose Origin is not the server's own, or
//     that the browser marks Sec-Fetch-Site: cross-site, is refused. Requests without an
//     Origin (the CLI, curl) pass: no browser page sent them.
//
// listenAddr is the address the server listens on (--addr). When it is not a loopback
// address and anyHost is true (updraft dev --allow-remote), any Host is served; the Origin
// check still applies.
func DevGuard(h http.Handler, listenAddr string, anyHost bool) http.Handler {
	hosts := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	if host, _, err := net.SplitHostPort(listenAddr); err == nil && host != "" {
		hosts[strings.ToLower(host)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostname(r.Host)
		if !anyHost && !hosts[host] {
			http.Error(w, fmt.Sprintf("updraft dev: refusing Host %q: the dev server answers only localhost, 127.0.0.1 and [::1] (auth is off here; a page of another site must not reach it)", r.Host), http.StatusMisdirectedRequest)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if why := crossOrigin(r); why != "" {
				http.Error(w, "updraft dev: refusing a cross-origin "+r.Method+": "+why, http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// crossOrigin says why a state-changing request came from another site, or "".
func crossOrigin(r *http.Request) string {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return "the browser says it came from another site (Sec-Fetch-Site: cross-site)"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || o == "null" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Sprintf("its Origin %q is not this server's (http://%s)", o, r.Host)
	}
	return ""
}

// hostname is a Host header's host, without port or brackets, in lower case.
func hostname(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.Trim(h, "[]"))
}

// IsLoopbackAddr reports whether a listen address (host:port) only accepts connections from
// this machine: localhost, 127.0.0.0/8 or ::1. An empty host or 0.0.0.0 listens everywhere.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
