package proctree_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/proctree"
)

const envStarter = "PROCTREE_TEST_STARTER"

func TestMain(m *testing.M) {
	proctree.Init()
	if script := os.Getenv(envStarter); script != "" {
		// A stand-in for a worker: start a tree, say so, and wait to be killed.
		t, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c", script}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("started")
		_, _ = t.Wait()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// pids waits until the task's pid file holds n pids and returns them.
func pids(t *testing.T, file string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		var out []int
		for _, f := range strings.Fields(string(b)) {
			var p int
			fmt.Sscan(f, &p)
			out = append(out, p)
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task wrote %d of %d pids to %s", len(out), n, file)
		}
		time.Sleep(10 * time.Millisecond) // polling a file the task writes
	}
}

func assertGone(t *testing.T, what string, ps []int) {
	t.Helper()
	for _, p := range ps {
		if proctree.Alive(p) {
			t.Errorf("%s: process %d still runs", what, p)
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

// escaping starts a setsid grandchild and a same-group child, writes their pids, then waits.
func escaping(file string) string {
	return fmt.Sprintf("setsid sleep 60 & echo $! >> %[1]s; sleep 60 & echo $! >> %[1]s; echo $$ >> %[1]s; wait", file)
}

func TestSupervisorIsUsed(t *testing.T) {
	if !proctree.Available() {
		t.Fatal("Init was called: the supervisor should be available on Linux")
	}
}

func TestStopKillsTheTreeWithSetsidDescendants(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pids")
	tr, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c", escaping(file)}})
	if err != nil {
		t.Fatal(err)
	}
	ps := pids(t, file, 3)
	tr.Stop()
	// Stop returns once the supervisor saw every descendant gone.
	assertGone(t, "after Stop", append(ps, tr.Pid()))
	st, _ := tr.Wait()
	if ws := st.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("status %v; want killed by SIGKILL (mirrored from the shell)", st)
	}
}

func TestCommandExitEndsWhatItLeftRunning(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pids")
	r, w, _ := os.Pipe()
	tr, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c",
		fmt.Sprintf("setsid sh -c 'echo escaped; sleep 60' & echo $! > %s; sleep 0.2; echo bye; exit 3", file)}, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The escaped child holds stdout; the output still ends, because the tree does.
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = out.ReadFrom(r); close(done) }()
	st, err := tr.Wait()
	if err != nil || st.ExitCode() != 3 {
		t.Fatalf("exit %v (%v); want the shell's 3", st, err)
	}
	assertGone(t, "after the command exited", pids(t, file, 1))
	<-done
	if !strings.Contains(out.String(), "bye") {
		t.Errorf("output %q lacks the shell's last line", out.String())
	}
}

func TestDeadStarterTakesTheTreeWithIt(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pids")
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envStarter+"="+escaping(file))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ref := proctree.Ref(cmd.Process.Pid)
	ps := pids(t, file, 3)
	sups := proctree.Supervisors(ref)
	if len(sups) != 1 {
		t.Fatalf("supervisors of %s: %v; want 1", ref, sups)
	}
	// SIGKILL the starter's whole group: the supervisor has a group of its own.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for len(proctree.Supervisors(ref)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the supervisor outlived its starter by 20 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the process table
	}
	t.Logf("the supervisor was gone %s after the kill", time.Since(killed).Round(time.Millisecond))
	// Once no supervisor of the dead starter is left, none of the tree is either.
	assertGone(t, "after the starter was killed", append(ps, sups...))
}

func TestExitCodesAndSignalsAreMirrored(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		script string
		code   int
		sig    syscall.Signal
	}{{"exit 0", 0, 0}, {"exit 99", 99, 0}, {"kill -TERM $$", -1, syscall.SIGTERM}, {"kill -KILL $$", -1, syscall.SIGKILL}} {
		tr, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c", c.script}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := tr.Wait()
		if err != nil || st.ExitCode() != c.code {
			t.Errorf("%q: exit %v (%v); want %d", c.script, st, err, c.code)
			continue
		}
		if ws := st.Sys().(syscall.WaitStatus); c.sig != 0 && (!ws.Signaled() || ws.Signal() != c.sig) {
			t.Errorf("%q: status %v; want killed by %v", c.script, st, c.sig)
		}
	}
}

// BenchmarkStartTrue measures what the supervisor adds to a command: `true` under it.
func BenchmarkStartTrue(b *testing.B) {
	for range b.N {
		tr, err := proctree.Start(proctree.Cmd{Path: "/bin/true"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tr.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopEscapedTree measures Stop on a tree with a setsid grandchild.
func BenchmarkStopEscapedTree(b *testing.B) {
	file := filepath.Join(b.TempDir(), "pids")
	for range b.N {
		b.StopTimer()
		os.Remove(file)
		tr, err := proctree.Start(proctree.Cmd{Path: "/bin/sh", Args: []string{"-c", escaping(file)}})
		if err != nil {
			b.Fatal(err)
		}
		for len(strings.Fields(readFile(file))) < 3 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		tr.Stop()
	}
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

// TestDedicatedSupervisorNextToTheBinary runs a starter that has cmd/updraft-supervise next to
// its executable: its trees run under that binary (not a re-execution of the starter), and
// killing the starter still takes the whole tree, setsid descendants included.
func TestDedicatedSupervisorNextToTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	helper := filepath.Join(dir, "updraft-supervise")
	if out, err := exec.Command("go", "build", "-o", helper, "github.com/updraft-dev/updraft/cmd/updraft-supervise").CombinedOutput(); err != nil {
		t.Fatalf("build updraft-supervise: %v\n%s", err, out)
	}
	exe, _ := os.Executable()
	starter := filepath.Join(dir, "starter")
	copyFile(t, exe, starter)
	file := filepath.Join(dir, "pids")
	cmd := exec.Command(starter, "-test.run=^$")
	cmd.Env = append(os.Environ(), envStarter+"="+escaping(file))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ref := proctree.Ref(cmd.Process.Pid)
	ps := pids(t, file, 3)
	sups := proctree.Supervisors(ref)
	if len(sups) != 1 {
		t.Fatalf("supervisors of %s: %v; want 1", ref, sups)
	}
	if got, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sups[0])); got != helper {
		t.Errorf("the supervisor runs %q; want the dedicated %q", got, helper)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for len(proctree.Supervisors(ref)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the dedicated supervisor outlived its starter by 20 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the process table
	}
	assertGone(t, "after the starter was killed", append(ps, sups...))

	// Run by hand, or by a starter of another protocol, it refuses with a clear message.
	for _, c := range []struct {
		env  string
		code int
		says string
	}{{"", 2, "started by an Updraft worker only"}, {"UPDRAFT_PROCTREE_SUPERVISE=0", 127, "rebuild it"}} {
		h := exec.Command(helper, "x", "/bin/true")
		h.Env = append(os.Environ(), c.env)
		out, err := h.CombinedOutput()
		if h.ProcessState == nil || h.ProcessState.ExitCode() != c.code || !strings.Contains(string(out), c.says) {
			t.Errorf("updraft-supervise with %q: exit %v (%v), output %q; want %d saying %q", c.env, h.ProcessState, err, out, c.code, c.says)
		}
	}
}

func TestSupervisorPathIsTheBinaryItselfWithoutAHelper(t *testing.T) {
	if got := proctree.SupervisorPath(); got != "/proc/self/exe" {
		t.Errorf("SupervisorPath() = %q; want /proc/self/exe (no updraft-supervise next to the test binary)", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
