//go:build soak

package soak

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
)

// jvm is an emulator process this test kills and starts again with the same command line,
// so it comes back on the same port (empty, unless the command line imports saved data).
type jvm struct {
	name, host string
	argv, env  []string
	dir        string
	pid        int
	cmd        *exec.Cmd // the restarted process (nil before a restart)
	logPath    string
}

// captureJVM reads a running emulator's command line, environment and working directory.
func captureJVM(t *testing.T, e *emulators.Emulator, logDir string) *jvm {
	t.Helper()
	pid := e.PID()
	read := func(what string) []string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, what))
		if err != nil {
			t.Fatalf("read /proc/%d/%s of the %s emulator: %v", pid, what, e.Name, err)
		}
		return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	dir, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, a := range read("cmdline") {
		if strings.HasPrefix(a, "-XX:ArchiveClassesAtExit") { // only the first run writes the archive
			continue
		}
		argv = append(argv, a)
	}
	return &jvm{name: e.Name, host: e.Host, argv: argv, env: read("environ"), dir: dir, pid: pid,
		logPath: filepath.Join(logDir, e.Name+"-restarted.log")}
}

// kill9 kills the emulator's JVM.
func (j *jvm) kill9(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(j.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the %s emulator (pid %d): %v", j.name, j.pid, err)
	}
	for end := time.Now().Add(10 * time.Second); (proc{PID: j.pid}).alive(); {
		if time.Now().After(end) {
			t.Fatalf("the %s emulator (pid %d) is alive 10 s after kill -9", j.name, j.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts the JVM again with its command line, and waits until it answers.
func (j *jvm) restart(t *testing.T) {
	t.Helper()
	logf, err := os.Create(j.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(j.argv[0], j.argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = j.env, j.dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart the %s emulator: %v", j.name, err)
	}
	j.cmd, j.pid = cmd, cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	c := &http.Client{Timeout: 2 * time.Second}
	for end := time.Now().Add(90 * time.Second); ; {
		if resp, err := c.Get("http://" + j.host + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("the restarted %s emulator exited: %s", j.name, tail(j.logPath, 20))
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("the restarted %s emulator did not answer on %s within 90 s: %s", j.name, j.host, tail(j.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthTurns waits until /healthz is healthy (want true: 200) or not (false), returning
// how long that took, or -1 past the bound.
func healthTurns(s *stack, want bool, within time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		healthy := err == nil && resp.StatusCode == 200
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if healthy == want {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return -1
}

// TestEmulatorsKilledAndRestarted: with runs in flight, the Pub/Sub emulator and then the
// Firestore emulator are killed (-9) and started again on the same port. Each time /healthz
// turns red, then green; the runs finish, each task run once (a second run of a task is
// allowed only where its first try was declared a lost worker: counted and reported); and
// after Firestore comes back the DAG is deployed again and a new run succeeds.
func TestEmulatorsKilledAndRestarted(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	logDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	set, err := emulators.StartAll(ctx, logDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Stop() }) // the killed ones report an error: expected
	step := pick(3, 10)
	var tasks []string
	prev := ""
	for _, id := range []string{"a", "b", "c", "d"} {
		fields := "retries: 2\nretry_delay: 1s"
		if prev != "" {
			fields += "\nneeds: [" + prev + "]"
		}
		tasks = append(tasks, shellTask(id, fields, "", fmt.Sprintf("%s\nsleep %d\n%s", rec(work, "chaos.log", "start"), step, rec(work, "chaos.log", "end"))))
		prev = id
	}
	d := dagFile("id: soak_chaos", tasks...)
	s := startStack(t, work, stackOptions{Emulators: set.Env(), Env: []string{"UPDRAFT_LEASE=5s"}, DAGs: map[string]string{"chaos.yaml": d}})
	runsPer := pick(3, 10)
	redWithin, greenWithin := pick(30*time.Second, 60*time.Second), pick(90*time.Second, 3*time.Minute)
	finishWithin := pick(2*time.Minute, 10*time.Minute)

	type phase struct {
		name string
		emu  *emulators.Emulator
	}
	var allRuns []string
	lost := map[string]bool{} // runs whose documents vanished with the store
	// check judges a finished run: success, and each task's command run once; a second
	// execution is explained only by a lost worker on an earlier try of that task.
	var unexplained, explained, notSuccess int
	check := func(r *runDetail) {
		per := map[string]int{}
		for _, l := range readLines(t, filepath.Join(work, "chaos.log")) {
			if l.Event == "start" && l.Run == r.RunID {
				per[l.Task]++
			}
		}
		if r.State != "success" {
			notSuccess++
			t.Errorf("run %s ended %s (tasks %s), want success", r.RunID, r.State, summarise(r))
		}
		for _, task := range []string{"a", "b", "c", "d"} {
			n := per[task]
			if n <= 1 {
				continue
			}
			lostTries := 0
			for _, a := range r.Attempts {
				if a.TaskID == task && (a.State == "lost" || strings.Contains(a.Error, "lost worker")) {
					lostTries++
				}
			}
			if n-1 <= lostTries {
				explained += n - 1
				t.Logf("run %s task %s ran %d times, after %d lost worker(s): allowed", r.RunID, task, n, lostTries)
			} else {
				unexplained += n - 1 - lostTries
				explained += lostTries
				t.Errorf("run %s task %s ran %d times with %d lost worker(s) to explain it", r.RunID, task, n, lostTries)
			}
		}
	}
	for _, ph := range []phase{{"pubsub", set.PubSub}, {"firestore", set.Firestore}} {
		j := captureJVM(t, ph.emu, logDir)
		var runs []string
		for i := 0; i < runsPer; i++ {
			runs = append(runs, s.trigger("soak_chaos"))
		}
		allRuns = append(allRuns, runs...)
		before := count(readLines(t, filepath.Join(work, "chaos.log")), "start")
		if err := s.poll("a task of the "+ph.name+" phase's runs to start", time.Minute, func() (bool, string) {
			n := count(readLines(t, filepath.Join(work, "chaos.log")), "start")
			return n > before, fmt.Sprintf("%d starts", n)
		}); err != nil {
			t.Errorf("%s phase, before the kill: %v", ph.name, err)
		}
		j.kill9(t)
		t.Logf("%s emulator killed (pid %d)", ph.name, j.pid)
		red := healthTurns(s, false, redWithin)
		fig[ph.name+"_red_after_s"] = red.Seconds()
		if red < 0 {
			t.Errorf("/healthz stayed healthy for %s with the %s emulator dead", redWithin, ph.name)
		}
		j.restart(t)
		t.Logf("%s emulator restarted on %s (pid %d)", ph.name, j.host, j.pid)
		green := healthTurns(s, true, greenWithin)
		fig[ph.name+"_green_after_restart_s"] = green.Seconds()
		if green < 0 {
			t.Errorf("/healthz did not turn healthy within %s of the %s emulator's restart", greenWithin, ph.name)
		}
		if ph.name == "firestore" {
			// An empty store has lost the dev identity's admin grant too: say so, grant it
			// again (as a user would, with the CLI) so the rest can still be read.
			if code, body, _ := s.get("/api/v1/dags"); code == 403 {
				fig["dev_identity_lost_its_role"] = true
				t.Errorf("after the Firestore emulator came back, the API refuses the dev identity: %.200s", body)
				var me struct{ Email string }
				if err := s.getJSON("/api/v1/me", &me); err != nil || me.Email == "" {
					t.Fatalf("GET /api/v1/me: %v", err)
				}
				s.mustCLI("users", "grant", me.Email, "admin")
			}
			err := s.poll("the DAG to be deployed again", pick(time.Minute, 2*time.Minute), func() (bool, string) {
				code, body, err := s.get("/api/v1/dags/soak_chaos")
				return code == 200, fmt.Sprintf("%d %v %.200s", code, err, body)
			})
			fig["dag_redeployed"] = err == nil
			if err != nil {
				t.Errorf("after the Firestore emulator came back: %v", err)
			} else {
				after := s.trigger("soak_chaos")
				allRuns = append(allRuns, after)
				runs = append(runs, after)
			}
		}
		deadline := time.Now().Add(finishWithin) // one bound for the phase's runs together
		for _, id := range runs {
			var r *runDetail
			err := s.poll("run "+id+" to finish", max(time.Until(deadline), 0), func() (bool, string) {
				if code, _, _ := s.get("/api/v1/dags/soak_chaos/runs/" + id); code == 404 {
					lost[id] = true
					return true, ""
				}
				got, err := s.run("soak_chaos", id)
				if err != nil {
					return false, err.Error()
				}
				r = got
				return r.finished(), r.State + " " + summarise(r)
			})
			if err != nil {
				t.Errorf("%s phase: %v", ph.name, err)
			}
			if r != nil && !lost[id] {
				check(r) // now: a later phase may erase it with the store
			}
		}
	}
	fig["runs"], fig["runs_lost_with_store"], fig["runs_not_success"] = len(allRuns), len(lost), notSuccess
	fig["duplicates_after_lost_worker"], fig["duplicates_unexplained"] = explained, unexplained
	if len(lost) > 0 {
		t.Errorf("%d run(s) in flight vanished when the Firestore emulator was killed and restarted (its data lived only in memory): they never finished", len(lost))
	}
}
