package runemu_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
)

// envServe makes the test binary a service instance: it serves its pid and K_REVISION on the
// socket the stand-in passes as fd 3.
const envServe = "RUNEMU_TEST_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		if os.Getenv("LISTEN_FDS") != "1" || os.Getenv("PORT") == "" {
			fmt.Fprintln(os.Stderr, "want LISTEN_FDS=1 and PORT")
			os.Exit(3)
		}
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%d %s", os.Getpid(), os.Getenv("K_REVISION"))
		}))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func get(t *testing.T, url string) (pid int, revision string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if _, err := fmt.Sscan(string(b), &pid, &revision); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return pid, revision
}

func TestServiceServesRestartsAfterACrashAndStops(t *testing.T) {
	t.Parallel()
	srv, err := runemu.Start(runemu.Config{}, filepath.Join(t.TempDir(), "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.StartService("Bad_Name", runemu.ServiceSpec{Command: []string{self}}); err == nil {
		t.Fatal("a service id Cloud Run refuses was accepted")
	}
	svc, err := srv.StartService("runner", runemu.ServiceSpec{Command: []string{self}, Env: map[string]string{envServe: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	// The port is bound before the instance runs: the first request waits in its queue.
	pid, rev := get(t, svc.URL)
	if pid != svc.PID() || rev != "runner-00001-emu" {
		t.Fatalf("answered by %d (%s); want the instance %d, revision runner-00001-emu", pid, rev, svc.PID())
	}
	if err := svc.Crash(); err != nil {
		t.Fatal(err)
	}
	pid2, _ := get(t, svc.URL) // same URL, a new instance
	if pid2 == pid || svc.Instances() != 2 {
		t.Fatalf("after the crash: answered by %d, %d instances; want a second instance", pid2, svc.Instances())
	}
	assertGone(t, pid)
	svc.Stop(time.Second)
	assertGone(t, pid2)
	if _, err := net.DialTimeout("tcp", svc.URL[len("http://"):], time.Second); err == nil {
		t.Fatal("the port still accepts connections after Stop")
	}
	if n := svc.Instances(); n != 2 {
		t.Fatalf("%d instances after Stop; want no new one", n)
	}
}
