package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDevGuardRefusesOtherSites: with auth off, the dev server serves only its own host
// names (DNS rebinding arrives with Host: evil.example) and refuses writes from another
// origin; a refused request never reaches the UI or the API.
func TestDevGuardRefusesOtherSites(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
	srv := httptest.NewServer(DevGuard(inner, "127.0.0.1:8080", false))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	do := func(method, host, origin, fetchSite string) int {
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/dags/x/trigger", strings.NewReader("{}"))
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if fetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	refused := []struct{ name, method, host, origin, site string }{
		{"rebound read", "GET", "evil.example:" + port, "", ""},
		{"rebound write", "POST", "evil.example:" + port, "http://evil.example:" + port, ""},
		{"rebound, no port", "GET", "evil.example", "", ""},
		{"cross-origin write", "POST", "127.0.0.1:" + port, "http://evil.example", ""},
		{"cross-origin delete", "DELETE", "localhost:" + port, "https://evil.example", ""},
		{"null origin", "POST", "127.0.0.1:" + port, "null", ""},
		{"cross-site fetch", "POST", "127.0.0.1:" + port, "", "cross-site"},
		{"other port's origin", "POST", "127.0.0.1:" + port, "http://127.0.0.1:1", ""},
	}
	for _, c := range refused {
		if code := do(c.method, c.host, c.origin, c.site); code < 400 {
			t.Errorf("%s: %d; want refused", c.name, code)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the handler", n)
	}
	allowed := []struct{ name, method, host, origin string }{
		{"page", "GET", "127.0.0.1:" + port, ""},
		{"localhost page", "GET", "localhost:" + port, ""},
		{"ipv6 page", "GET", "[::1]:" + port, ""},
		{"same-origin write", "POST", "127.0.0.1:" + port, "http://127.0.0.1:" + port},
		{"same-origin via localhost", "POST", "localhost:" + port, "http://localhost:" + port},
		{"the CLI (no Origin)", "POST", "127.0.0.1:" + port, ""},
	}
	for _, c := range allowed {
		if code := do(c.method, c.host, c.origin, ""); code != http.StatusOK {
			t.Errorf("%s: %d; want served", c.name, code)
		}
	}
	if n := reached.Load(); n != int64(len(allowed)) {
		t.Fatalf("%d requests reached the handler; want %d", n, len(allowed))
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:0": true, "[::1]:80": true, "127.0.0.2:1": true,
		":8080": false, "0.0.0.0:8080": false, "192.168.1.5:8080": false, "[::]:80": false, "example.com:80": false, "8080": false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
