//go:build soak

package soak

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTriggerKilledMidCascade: `updraft trigger` of a long noop chain (ending in one shell
// task), SIGKILLed once its run exists: the run still completes, every task success, and
// the final task ran once. No client may strand a run.
func TestTriggerKilledMidCascade(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	n := envInt(t, "UPDRAFT_SOAK_CHAIN", pick(300, 2000))
	var b strings.Builder
	b.WriteString("  - {id: n0000, type: noop}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: n%04d, type: noop, needs: [n%04d]}\n", i, i-1)
	}
	d := dagFile("id: soak_chain\nmax_active_tasks: 16", b.String(), shellTask("finish", fmt.Sprintf("needs: [n%04d]", n-1), "", rec(work, "finish.log", "start")))
	s := startStack(t, work, stackOptions{DAGs: map[string]string{"chain.yaml": d}})

	trig := exec.Command(updraftBin, "trigger", "soak_chain")
	var out bytes.Buffer
	trig.Env, trig.Dir, trig.Stdout, trig.Stderr = s.env, repoRoot, &out, &out
	trig.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := trig.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- trig.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-trig.Process.Pid, syscall.SIGKILL) })

	// Kill the client mid-cascade: once its run exists and a few of its tasks are done (or at
	// once if it returned already, as a client that only writes intent does).
	var runID string
	s.waitFor("the triggered run to exist", 2*time.Minute, func() (bool, string) {
		runs, err := s.runs("soak_chain")
		if err != nil || len(runs) == 0 {
			return false, fmt.Sprint("no run yet ", err)
		}
		runID = runs[0].RunID
		return true, ""
	})
	_ = s.poll("a few tasks of the chain to be done", time.Minute, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			return true, ""
		default:
		}
		r, err := s.run("soak_chain", runID)
		if err != nil {
			return false, err.Error()
		}
		done := 0
		for _, tk := range r.Tasks {
			if tk.State == "success" {
				done++
			}
		}
		return done >= 5, fmt.Sprintf("%d done", done)
	})
	killed := false
	select {
	case err := <-exited:
		t.Logf("updraft trigger had already exited (%v) before it could be killed: %s", err, strings.TrimSpace(out.String()))
	default:
		_ = syscall.Kill(-trig.Process.Pid, syscall.SIGKILL)
		err := <-exited
		killed = strings.Contains(fmt.Sprint(err), "killed")
	}
	killedAt := time.Now()
	doneAtKill := 0
	if r, err := s.run("soak_chain", runID); err == nil {
		for _, tk := range r.Tasks {
			if tk.State == "success" {
				doneAtKill++
			}
		}
	}
	t.Logf("trigger killed: %v, with %d of %d tasks done", killed, doneAtKill, n+1)
	r := s.waitRun("soak_chain", runID, pick(4*time.Minute, 25*time.Minute))
	fig["tasks"], fig["trigger_killed"], fig["done_at_kill"] = n+1, killed, doneAtKill
	fig["finished_after_kill_s"] = time.Since(killedAt).Round(time.Second).Seconds()
	fig["run_state"] = r.State
	notDone := 0
	var sample []string
	for _, tk := range r.Tasks {
		if tk.State != "success" {
			notDone++
			if len(sample) < 5 {
				sample = append(sample, tk.TaskID+"="+tk.State)
			}
		}
	}
	if len(r.Tasks) != n+1 {
		t.Errorf("the run has %d tasks, want %d", len(r.Tasks), n+1)
	}
	if r.State != "success" || notDone > 0 {
		t.Errorf("run ended %s with %d task(s) not success (%s), want every task success", r.State, notDone, strings.Join(sample, ", "))
	}
	if c := count(readLines(t, filepath.Join(work, "finish.log")), "start"); c != 1 {
		t.Errorf("the final shell task ran %d times, want once", c)
	}
}

// TestMinutelyDAGsEveryIntervalOnce: N DAGs scheduled every minute with catchup, starting a
// few minutes back and ending M minutes on: every interval of every DAG gets exactly one run,
// every run succeeds, and every task ran exactly once per interval.
func TestMinutelyDAGsEveryIntervalOnce(t *testing.T) {
	t.Parallel()
	fig := newFigures(t)
	work := newWork(t)
	nDAGs := envInt(t, "UPDRAFT_SOAK_DAGS", pick(20, 300))
	minutes := envInt(t, "UPDRAFT_SOAK_MINUTES", pick(2, 5))
	back := pick(2, 3)
	now := time.Now().UTC().Truncate(time.Minute)
	start, end := now.Add(-time.Duration(back)*time.Minute), now.Add(time.Duration(minutes)*time.Minute)
	dags := map[string]string{}
	for i := 0; i < nDAGs; i++ {
		id := fmt.Sprintf("soak_minutely_%03d", i)
		file := id + ".log"
		dags[id+".yaml"] = dagFile(fmt.Sprintf("id: %s\nschedule: \"* * * * *\"\ncatchup: true\nstart: %s\nend: %s",
			id, start.Format(time.RFC3339), end.Format(time.RFC3339)),
			shellTask("a", "retries: 1\nretry_delay: 1s", "", rec(work, file, "start")),
			shellTask("b", "needs: [a]\nretries: 1\nretry_delay: 1s", "", rec(work, file, "start")),
			shellTask("c", "needs: [b]\nretries: 1\nretry_delay: 1s", "", rec(work, file, "start")))
	}
	// The intervals a correct scheduler creates, as `updraft schedule next` computes them.
	sched := filepath.Join(t.TempDir(), "one.yaml")
	writeFile(t, sched, dags["soak_minutely_000.yaml"])
	cmd := exec.Command(updraftBin, "schedule", "next", sched, "-n", "1000", "--after", start.Add(-time.Second).Format(time.RFC3339))
	schedOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("updraft schedule next: %v\n%s", err, schedOut)
	}
	want := map[time.Time]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(schedOut)), "\n") {
		f := strings.Fields(l)
		ld, err := time.Parse(time.RFC3339, f[0])
		if err != nil {
			t.Fatalf("updraft schedule next printed %q: %v", l, err)
		}
		if ld.Before(start) || ld.After(end) {
			t.Fatalf("updraft schedule next printed an interval outside [%s, %s]: %q", start, end, l)
		}
		want[ld.UTC()] = true
	}
	// Airflow's rule, which Updraft follows: the interval starting at `end` is the last one.
	if n := back + minutes; len(want) < n || len(want) > n+1 {
		t.Fatalf("updraft schedule next gave %d intervals from %s to %s, want %d or %d:\n%s", len(want), start.Format(time.RFC3339), end.Format(time.RFC3339), n, n+1, schedOut)
	}
	lastEnd := start
	for ld := range want {
		if e := ld.Add(time.Minute); e.After(lastEnd) {
			lastEnd = e
		}
	}
	s := startStack(t, work, stackOptions{DAGs: dags})
	readyAt := time.Now()
	ids := make([]string, 0, nDAGs)
	for i := 0; i < nDAGs; i++ {
		ids = append(ids, fmt.Sprintf("soak_minutely_%03d", i))
	}

	// Wait until every DAG has a finished run for every interval (or the bound passes).
	all := map[string][]runBrief{}
	err = s.poll("every interval's run to finish", time.Until(lastEnd)+pick(3*time.Minute, 15*time.Minute), func() (bool, string) {
		pending := 0
		for _, id := range ids {
			runs, err := s.runs(id)
			if err != nil {
				return false, err.Error()
			}
			all[id] = runs
			done := 0
			for _, r := range runs {
				if want[r.LogicalDate.UTC()] && (r.State == "success" || r.State == "failed") {
					done++
				}
			}
			pending += len(want) - done
		}
		if pending > 0 {
			time.Sleep(2 * time.Second) // one pass reads every DAG's runs: pace the polling
		}
		return pending == 0, fmt.Sprintf("%d of %d runs not finished", pending, len(want)*nDAGs)
	})
	if err != nil {
		t.Error(err) // and count what is there
	}

	var missing, extra, dupRuns, failed, dupExec, missExec, execs int
	var delays []time.Duration
	var problems []string
	note := func(format string, a ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	for _, id := range ids {
		seen := map[time.Time]int{}
		for _, r := range all[id] {
			ld := r.LogicalDate.UTC()
			seen[ld]++
			if !want[ld] {
				extra++
				note("%s: run %s is outside the expected intervals", id, r.RunID)
				continue
			}
			if r.State != "success" {
				failed++
				note("%s: run %s ended %s", id, r.RunID, r.State)
			}
			if r.StartedAt != nil && ld.Add(time.Minute).After(readyAt) {
				delays = append(delays, r.StartedAt.Sub(ld.Add(time.Minute)))
			}
		}
		for ld := range want {
			switch n := seen[ld]; {
			case n == 0:
				missing++
				note("%s: no run for the interval starting %s", id, ld.Format(time.RFC3339))
			case n > 1:
				dupRuns++
				note("%s: %d runs for the interval starting %s", id, n, ld.Format(time.RFC3339))
			}
		}
		perTask := map[string]int{}
		for _, l := range readLines(t, filepath.Join(work, id+".log")) {
			ld, err := time.Parse(time.RFC3339, l.LogicalDate)
			if err != nil {
				t.Fatalf("%s: bad logical date in %+v", id, l)
			}
			perTask[ld.UTC().Format(time.RFC3339)+" "+l.Task]++
			execs++
		}
		for ld := range want {
			for _, task := range []string{"a", "b", "c"} {
				switch n := perTask[ld.Format(time.RFC3339)+" "+task]; {
				case n == 0:
					missExec++
					note("%s: task %s of %s never ran", id, task, ld.Format(time.RFC3339))
				case n > 1:
					dupExec += n - 1
					note("%s: task %s of %s ran %d times", id, task, ld.Format(time.RFC3339), n)
				}
			}
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	fig["dags"], fig["minutes"], fig["intervals_per_dag"] = nDAGs, minutes, len(want)
	fig["runs_expected"], fig["executions"], fig["executions_expected"] = nDAGs*len(want), execs, 3*nDAGs*len(want)
	fig["runs_missing"], fig["runs_extra"], fig["runs_duplicated"], fig["runs_failed"] = missing, extra, dupRuns, failed
	fig["executions_duplicated"], fig["executions_missing"] = dupExec, missExec
	if len(delays) > 0 {
		fig["schedule_delay_p50_s"] = delays[len(delays)/2].Seconds()
		fig["schedule_delay_p95_s"] = delays[len(delays)*95/100].Seconds()
		fig["schedule_delay_max_s"] = delays[len(delays)-1].Seconds()
	}
	if missing+extra+dupRuns+failed+dupExec+missExec > 0 {
		t.Errorf("%d DAGs × %d intervals: %d runs missing, %d extra, %d duplicated, %d failed; %d executions duplicated, %d missing:\n%s",
			nDAGs, len(want), missing, extra, dupRuns, failed, dupExec, missExec, strings.Join(problems, "\n"))
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
