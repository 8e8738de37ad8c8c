package taskrun

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/updraft-dev/updraft/scheduler"
)

// countingServer is a loopback server that counts the requests that reach it.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, `{"access_token": "ya29.stolen"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestHTTPEgressRefusesInternalAddresses runs the http and sensor.http types, as a worker
// does, against the metadata server, loopback and private addresses, by address, by name and
// through a redirect: each is refused by the policy before any connection, as a final
// failure whose error says how to allow a private endpoint.
func TestHTTPEgressRefusesInternalAddresses(t *testing.T) {
	local, localHits := countingServer(t, nil)
	port := local.URL[strings.LastIndex(local.URL, ":")+1:]
	// A server the allow-list lets through, redirecting to addresses the policy refuses.
	redirector, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	noEnv := func(string) string { return "" }
	only127 := func(k string) string {
		if k == EnvHTTPAllow {
			return "127.0.0.1/32"
		}
		return ""
	}
	cases := []struct {
		name, url string
		getenv    func(string) string
	}{
		{"metadata by address", "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token", noEnv},
		{"metadata by name", "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token", noEnv},
		{"loopback by address", local.URL + "/token", noEnv},
		{"loopback by name", "http://localhost:" + port + "/token", noEnv},
		{"private by address", "http://10.1.2.3/", noEnv},
		{"redirect to metadata", redirector.URL + "/?to=http://169.254.169.254/computeMetadata/v1/", only127},
		{"redirect to metadata by name", redirector.URL + "/?to=http://metadata.google.internal/", only127},
		{"redirect to a private address", redirector.URL + "/?to=http://192.168.7.7:8080/", only127},
		{"redirect to loopback outside the list", redirector.URL + "/?to=http://127.0.0.2:" + port + "/", only127},
	}
	for _, c := range cases {
		for _, typ := range []Type{HTTP(), SensorHTTP()} {
			tc := httpContext(t, map[string]any{"url": c.url, "headers": map[string]any{"Metadata-Flavor": "Google"}})
			tc.Getenv, tc.Now = c.getenv, nil
			res := typ.Run(context.Background(), tc)
			if res.State != scheduler.AttemptFailed || !res.Final {
				t.Errorf("%s (%s): %s final=%v xcom %s; want a final failure", c.name, typ.Name, res.State, res.Final, res.XCom)
				continue
			}
			if !strings.Contains(res.Error, "refused to connect") || !strings.Contains(res.Error, EnvHTTPAllow+"=") {
				t.Errorf("%s (%s): error %q; want the egress refusal saying how to allow", c.name, typ.Name, res.Error)
			}
		}
	}
	if n := localHits.Load(); n != 0 {
		t.Errorf("the loopback server was reached %d times", n)
	}
}

// TestHTTPEgressAllowList lets a loopback endpoint through when it is allow-listed (as the
// local stack does for its stand-ins) and still refuses what the list does not name.
func TestHTTPEgressAllowList(t *testing.T) {
	local, hits := countingServer(t, nil)
	tc := httpContext(t, map[string]any{"url": local.URL})
	res := HTTP().Run(context.Background(), tc) // httpContext allows loopback
	if res.State != scheduler.AttemptSuccess || hits.Load() != 1 {
		t.Fatalf("allow-listed loopback: %s %q, %d hits", res.State, res.Error, hits.Load())
	}
	p, err := parseEgressAllow("10.20.0.0/16, 192.168.1.7, loopback")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.20.3.4": true, "10.21.0.1": false, "192.168.1.7": true, "192.168.1.8": false, "127.0.0.1": true,
		"::1": true, "169.254.169.254": false, "::ffff:169.254.169.254": false, "fd00::1": false, "8.8.8.8": true,
		"0.0.0.0": false, "100.64.0.1": false, "fe80::1": false,
	} {
		if got := p.permits(netip.MustParseAddr(addr)); got != want {
			t.Errorf("permits(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "intranet", "10.0.0.256"} {
		if _, err := parseEgressAllow(bad); err == nil || !strings.Contains(err.Error(), EnvHTTPAllow) {
			t.Errorf("parseEgressAllow(%q) = %v; want an error naming %s", bad, err, EnvHTTPAllow)
		}
	}
}

// TestHTTPEgressChecksAfterResolution resolves names with a DNS server the test controls:
// names that resolve to a private or the metadata address are refused after the lookup,
// before the dial, whatever the name looks like.
func TestHTTPEgressChecksAfterResolution(t *testing.T) {
	var dialled atomic.Int64
	resolver := fakeDNS(map[string]net.IP{
		"warehouse.internal.example.": net.ParseIP("10.9.8.7"),
		"innocent.example.":           net.ParseIP("169.254.169.254"),
	})
	p, _ := parseEgressAllow("")
	client := p.client(resolver)
	client.Transport.(*http.Transport).DialContext = wrapDial(client.Transport.(*http.Transport).DialContext, &dialled)
	for _, host := range []string{"warehouse.internal.example", "innocent.example"} {
		_, err := client.Get("http://" + host + "/")
		var ee *EgressError
		if !errors.As(err, &ee) {
			t.Fatalf("GET %s: %v; want an egress refusal", host, err)
		}
		if ee.Host != host || !ee.Addr.IsValid() || p.permits(ee.Addr) {
			t.Errorf("GET %s: refused %+v; want the name and the refused address it resolved to", host, ee)
		}
	}
	if dialled.Load() != 2 {
		t.Fatalf("dial attempts %d; want the two refused in the dialer", dialled.Load())
	}
}

func wrapDial(dial func(context.Context, string, string) (net.Conn, error), n *atomic.Int64) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
}

// fakeDNS is a resolver answering A queries from names (fully qualified) over an in-memory
// stream connection; other queries get no answer.
func fakeDNS(names map[string]net.IP) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			for {
				var size [2]byte
				if _, err := io.ReadFull(server, size[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(server, q); err != nil || len(q) < 17 {
					return
				}
				// The question: labels from byte 12, then type and class.
				var labels []string
				i := 12
				for i < len(q) && q[i] != 0 {
					l := int(q[i])
					labels = append(labels, string(q[i+1:i+1+l]))
					i += 1 + l
				}
				qend := i + 5
				qtype := binary.BigEndian.Uint16(q[i+1 : i+3])
				ip := names[strings.Join(labels, ".")+"."].To4()
				resp := append([]byte{}, q[:2]...)    // id
				resp = append(resp, 0x81, 0x80, 0, 1) // response, recursion; 1 question
				if qtype == 1 && ip != nil {
					resp = append(resp, 0, 1, 0, 0, 0, 0)
				} else {
					resp = append(resp, 0, 0, 0, 0, 0, 0)
				}
				resp = append(resp, q[12:qend]...)
				if qtype == 1 && ip != nil {
					resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
					resp = append(resp, ip...)
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := server.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
		return client, nil
	}}
}
