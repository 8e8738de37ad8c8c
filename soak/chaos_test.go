//go:build soak

package soak

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// emulatorJVM finds the JVM of an emulator that `updraft dev` (pid dev) started: a
// descendant of dev whose command line holds marker.
func emulatorJVM(t *testing.T, dev int, marker string) proc {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == dev {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), marker) {
			continue
		}
		for p, hops := pid, 0; p > 1 && hops < 20; hops++ {
			_, _, ppid, ok := procStat(p)
			if !ok {
				break
			}
			if ppid == dev {
				_, start, _, _ := procStat(pid)
				return proc{PID: pid, StartTime: start}
			}
			p = ppid
		}
	}
	t.Fatalf("no process of updraft dev (pid %d) runs %s", dev, marker)
	return proc{}
}

// kill9 kills a process and waits until it is gone.
func kill9(t *testing.T, name string, p proc) {
	t.Helper()
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the %s emulator (pid %d): %v", name, p.PID, err)
	}
	for end := time.Now().Add(10 * time.Second); p.alive(); {
		if time.Now().After(end) {
			t.Fatalf("the %s emulator (pid %d) is alive 10 s after kill -9", name, p.PID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newestSave is the modification time of the newest file dev saved Firestore's documents
// into (zero when none).
func newestSave(home string) time.Time {
	var newest time.Time
	_ = filepath.WalkDir(filepath.Join(home, "firestore-data"), func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	return newest
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
// Firestore emulator of `updraft dev` (as `make dev` runs them: dev keeps Firestore's
// documents, saved every second here, and starts a JVM that died) are killed with -9. Each
// time /healthz turns red, then green; the runs finish, each task run once (a second run of
// a task is allowed only where its first try was declared a lost worker: counted and
// reported); after Firestore comes back the DAG, the dev identity's role and the runs saved
// before the kill are there, and a new run succeeds.
func TestEmulatorsKilledAndRestarted(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
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
	s := startStack(t, work, stackOptions{OwnEmulators: true, Env: []string{"UPDRAFT_LEASE=5s", "UPDRAFT_DEV_SAVE_EVERY=1s"},
		DAGs: map[string]string{"chaos.yaml": d}})
	runsPer := pick(3, 10)
	redWithin, greenWithin := pick(30*time.Second, 60*time.Second), pick(90*time.Second, 3*time.Minute)
	finishWithin := pick(2*time.Minute, 10*time.Minute)

	type phase struct {
		name, marker, keeperName string
	}
	var allRuns []string
	lost := map[string]bool{} // runs whose documents vanished with the store
	// check judges a finished run: success, and each task's command run once; a second
	// execution is explained only by a lost worker on an earlier try of that task, or, for
	// the runs of the Firestore phase, by the store going back to its last save: a try that
	// ran in the seconds after it was claimed there again (the same try, run twice).
	var unexplained, explained, rolledBack, notSuccess int
	check := func(r *runDetail, rollback bool) {
		per := map[string]int{}
		perTry := map[string]map[int]int{}
		for _, l := range readLines(t, filepath.Join(work, "chaos.log")) {
			if l.Event == "start" && l.Run == r.RunID {
				per[l.Task]++
				if perTry[l.Task] == nil {
					perTry[l.Task] = map[int]int{}
				}
				perTry[l.Task][l.Try]++
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
			if rollback {
				for try, c := range perTry[task] {
					if c > 1 {
						rolledBack += c - 1
						n -= c - 1
						t.Logf("run %s task %s try %d ran %d times: the store went back to a save taken before it was recorded", r.RunID, task, try, c)
					}
				}
				if n <= 1 {
					continue
				}
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
	for _, ph := range []phase{{"pubsub", "pubsub-emulator", "Pub/Sub"}, {"firestore", "cloud-firestore-emulator", "Firestore"}} {
		var runs []string
		for i := 0; i < runsPer; i++ {
			runs = append(runs, s.trigger("soak_chaos"))
		}
		triggered := time.Now() // every run of the phase exists from here on
		allRuns = append(allRuns, runs...)
		before := count(readLines(t, filepath.Join(work, "chaos.log")), "start")
		if err := s.poll("a task of the "+ph.name+" phase's runs to start", time.Minute, func() (bool, string) {
			n := count(readLines(t, filepath.Join(work, "chaos.log")), "start")
			return n > before, fmt.Sprintf("%d starts", n)
		}); err != nil {
			t.Errorf("%s phase, before the kill: %v", ph.name, err)
		}
		if ph.name == "firestore" {
			// What is lost with the JVM is what changed since dev's last save: wait for a save
			// that holds the runs just triggered.
			if err := s.poll("dev to save Firestore after the triggers", time.Minute, func() (bool, string) {
				n := newestSave(s.home)
				return n.After(triggered), "newest save " + n.Format(time.RFC3339Nano)
			}); err != nil {
				t.Errorf("%v", err)
			}
		}
		j := emulatorJVM(t, s.cmd.Process.Pid, ph.marker)
		kill9(t, ph.name, j)
		t.Logf("%s emulator killed (pid %d)", ph.name, j.PID)
		// dev starts the JVM again within a second or two, often before a probe's own
		// deadline passes: the outage shows as a red /healthz, or else as the Keeper's
		// restart in dev's log; one of the two must be seen.
		restartLine := "the " + ph.keeperName + " emulator exited on its own"
		seenAs := ""
		red := time.Duration(-1)
		for start := time.Now(); time.Since(start) < redWithin && seenAs == ""; time.Sleep(100 * time.Millisecond) {
			if code, _, err := s.get("/healthz"); err != nil || code != 200 {
				red, seenAs = time.Since(start), "healthz"
			} else if b, _ := os.ReadFile(s.logPath); strings.Count(string(b), restartLine) > 0 {
				seenAs = "keeper restart in dev's log"
			}
		}
		fig[ph.name+"_red_after_s"] = red.Seconds()
		fig[ph.name+"_outage_seen_as"] = seenAs
		if seenAs == "" {
			t.Errorf("neither /healthz nor dev's log showed the %s emulator's death within %s", ph.name, redWithin)
		}
		green := healthTurns(s, true, greenWithin)
		fig[ph.name+"_green_after_restart_s"] = green.Seconds()
		if green < 0 {
			t.Errorf("/healthz did not turn healthy within %s of the %s emulator's death (dev starts it again)", greenWithin, ph.name)
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
				check(r, ph.name == "firestore") // now: a later phase may erase it with the store
			}
		}
	}
	fig["runs"], fig["runs_lost_with_store"], fig["runs_not_success"] = len(allRuns), len(lost), notSuccess
	fig["duplicates_after_lost_worker"], fig["duplicates_unexplained"] = explained, unexplained
	fig["duplicates_after_store_rollback"] = rolledBack
	if len(lost) > 0 {
		t.Errorf("%d run(s) saved before the kill vanished when the Firestore emulator was killed and started again: they never finished", len(lost))
	}
}
