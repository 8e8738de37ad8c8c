// Command updraft-bench measures Updraft on the local emulators and prints a table: task-to-
// task latency along a chain, throughput of independent tasks, a wide fan-out/fan-in,
// Firestore reads and writes per task, the tick's cost with many idle DAGs, and the
// scheduler's idle memory. Each figure is the median of several runs (-runs).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

type bench struct {
	// timeline prints when the tasks of the independent and fan-out shapes were queued,
	// claimed and ended.
	timeline bool
	ctx      context.Context
	set      *emulators.Set
	bin      string
	runs     int
	seq      atomic.Int64
	workerIO *statsWriter
	rows     []row
	log      *slog.Logger
	// warmWorkers is local.Config.WarmWorkers of every stack.
	warmWorkers int
	trace       bool // -trace: print the chain's operations by where they were made
}

type row struct{ name, value, goal string }

func main() {
	runs := flag.Int("runs", 3, "repetitions of each scenario (the median is reported)")
	bin := flag.String("bin", "bin", "folder with the updraft and updraft-scheduler binaries")
	timeline := flag.Bool("timeline", false, "print when the tasks were queued, claimed and ended: the chain's hops split in two, the independent and fan-out tasks relative to the trigger")
	warm := flag.Int("warmup", 600, "tasks run before measuring, to warm the emulators' JVMs (0: none)")
	only := flag.String("only", "", "comma-separated scenarios: chain,retry,independent,fanout,tick,duetick,noopchain,rss,ui,bundle (default all)")
	warmWorkers := flag.Int("warm-workers", 4, "warm worker processes that run the container attempts, as updraft dev keeps (0: a process per attempt)")
	trace := flag.Bool("trace", false, "print where the chain's reads and writes go, by operation (slower)")
	flag.Parse()
	ctx := context.Background()
	set, ok := emulators.FromEnv()
	if !ok {
		var err error
		fmt.Fprintln(os.Stderr, "starting emulators…")
		if set, err = emulators.StartAll(ctx, ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer set.Stop()
	}
	set.Apply()
	abs, _ := filepath.Abs(*bin)
	b := &bench{ctx: ctx, set: set, bin: abs, runs: *runs, workerIO: &statsWriter{}, warmWorkers: *warmWorkers, trace: *trace,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	want := func(s string) bool { return *only == "" || strings.Contains(","+*only+",", ","+s+",") }
	b.timeline = *timeline
	b.warmUp(*warm)
	if want("chain") {
		b.chain()
	}
	if want("retry") {
		b.retry()
	}
	if want("independent") {
		b.independent()
	}
	if want("fanout") {
		b.fanout()
	}
	if want("tick") {
		b.tick(1000)
		b.tick(10000)
	}
	if want("duetick") {
		b.dueTick(1000)
	}
	if want("noopchain") {
		b.noopChain(2000)
	}
	if want("rss") {
		b.rss()
	}
	if want("ui") {
		b.ui()
	}
	if want("bundle") {
		b.bundles()
	}
	b.print()
}

func (b *bench) add(name, value, goal string) {
	b.rows = append(b.rows, row{name, value, goal})
	fmt.Fprintf(os.Stderr, "  %s: %s\n", name, value)
}

func (b *bench) print() {
	workers := "a worker process per attempt"
	if b.warmWorkers > 0 {
		workers = fmt.Sprintf("%d warm workers", b.warmWorkers)
	}
	fmt.Printf("\nUpdraft benchmarks · %s · %d cores · %s · Go %s · median of %d runs · %s\n\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), b.runs, workers)
	fmt.Println("| measure | result | goal |")
	fmt.Println("| --- | --- | --- |")
	for _, r := range b.rows {
		fmt.Printf("| %s | %s | %s |\n", r.name, r.value, r.goal)
	}
}

// stack starts a fresh local stack on a new project.
func (b *bench) stack(maxWorkers int) (*local.Stack, func()) {
	project := fmt.Sprintf("bench-%d-%d", os.Getpid(), b.seq.Add(1))
	stats := "UPDRAFT_WORKER_STATS=1"
	if b.trace {
		stats = "UPDRAFT_WORKER_STATS=trace"
	}
	ctx, cancel := context.WithCancel(b.ctx)
	st, err := local.Open(ctx, local.Config{
		Project: project, Env: append(b.set.Env(), stats), LogDir: filepath.Join(os.TempDir(), "updraft-bench-logs"),
		WorkerCmd: []string{filepath.Join(b.bin, "updraft"), "worker"}, MaxWorkers: maxWorkers,
		WarmWorkers: b.warmWorkers, Log: b.log, WorkerStderr: b.workerIO,
	})
	must(err)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	return st, func() { cancel(); <-done; st.Close() }
}

func (b *bench) deploy(st *local.Stack, src string) {
	d, err := dag.Parse("bench.yaml", []byte(src), dag.Options{})
	must(err)
	_, err = st.Engine.Deploy(b.ctx, d, []byte(src))
	must(err)
}

// runDAG triggers a DAG and waits until the run finishes; it returns the wall time. It
// polls through a client of its own, so the per-task counts (st.Store's) leave its polls out.
func (b *bench) runDAG(st *local.Stack, id string) (*scheduler.Run, time.Duration) {
	poll, err := fsstore.Open(b.ctx, st.Project)
	must(err)
	defer poll.Close()
	t0 := time.Now()
	r, err := st.Engine.Trigger(b.ctx, id, nil, time.Now())
	must(err)
	for {
		v, err := poll.GetRun(b.ctx, r.DagID, r.RunID)
		must(err)
		if v.Rec.State.Finished() {
			if v.Rec.State != scheduler.RunSuccess {
				fmt.Fprintf(os.Stderr, "run %s/%s ended %s\n", r.DagID, r.RunID, v.Rec.State)
				os.Exit(1)
			}
			return r, v.Rec.EndedAt.Sub(t0)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shellTasks(sb *strings.Builder, ids []string, needs func(i int) string) {
	for i, id := range ids {
		fmt.Fprintf(sb, "  - {id: %s, type: shell, with: {command: \"true\"}%s}\n", id, needs(i))
	}
}

func (b *bench) chain() {
	const n = 50
	var sb strings.Builder
	sb.WriteString("id: chain50\nowner: bench@example.com\ntasks:\n")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i)
	}
	shellTasks(&sb, ids, func(i int) string {
		if i == 0 {
			return ""
		}
		return ", needs: [" + ids[i-1] + "]"
	})
	var p50s, p95s, totals, rpt, wpt []float64
	for range b.runs {
		st, stop := b.stack(64)
		b.deploy(st, sb.String())
		r0, w0 := st.Store.Counts()
		b.workerIO.reset()
		if b.trace {
			st.Store.TraceOps()
		}
		r, total := b.runDAG(st, "chain50")
		time.Sleep(200 * time.Millisecond) // let the advancer drain its events before counting
		r1, w1 := st.Store.Counts()
		wr, ww := b.workerIO.totals()
		if b.trace {
			b.printOps(st.Store.OpCounts(), n)
		}
		rpt = append(rpt, float64(r1-r0+wr)/n)
		wpt = append(wpt, float64(w1-w0+ww)/n)
		var lat, decided, delivered []float64
		for i := 1; i < n; i++ {
			up := b.ti(st, r, ids[i-1])
			down := b.attempt(st, r, ids[i])
			lat = append(lat, float64(down.StartedAt.Sub(*up.EndedAt))/1e6)
			if b.timeline {
				q := b.ti(st, r, ids[i]).QueuedAt
				decided = append(decided, float64(q.Sub(*up.EndedAt))/1e6)
				delivered = append(delivered, float64(down.StartedAt.Sub(*q))/1e6)
			}
		}
		if b.timeline {
			fmt.Fprintf(os.Stderr, "  timeline: upstream recorded → downstream queued p50 %.0f ms, p95 %.0f ms; queued → claimed p50 %.0f ms, p95 %.0f ms\n",
				pct(decided, 50), pct(decided, 95), pct(delivered, 50), pct(delivered, 95))
		}
		p50s = append(p50s, pct(lat, 50))
		p95s = append(p95s, pct(lat, 95))
		totals = append(totals, total.Seconds())
		stop()
	}
	b.add("chain of 50 `shell` tasks: task-to-task latency p50 (upstream result recorded → downstream claimed)", ms(median(p50s)), "≤ 40 ms (issue 18)")
	b.add("chain of 50: task-to-task latency p95", ms(median(p95s)), "")
	b.add("chain of 50: whole run", secs(median(totals)), "")
	b.add("Firestore reads per task (chain; worker + dispatcher + advancer)", fmt.Sprintf("%.1f", median(rpt)), "")
	b.add("Firestore writes per task (chain)", fmt.Sprintf("%.1f", median(wpt)), "")
}

func (b *bench) independent() {
	const n = 100
	var sb strings.Builder
	sb.WriteString("id: independent100\nowner: bench@example.com\nmax_active_tasks: 100\ntasks:\n")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%03d", i)
	}
	shellTasks(&sb, ids, func(int) string { return "" })
	var totals, rpt, wpt []float64
	for range b.runs {
		st, stop := b.stack(100)
		b.deploy(st, sb.String())
		r0, w0 := st.Store.Counts()
		b.workerIO.reset()
		t0 := time.Now()
		r, total := b.runDAG(st, "independent100")
		time.Sleep(200 * time.Millisecond) // let the advancer drain its events before counting
		r1, w1 := st.Store.Counts()
		wr, ww := b.workerIO.totals()
		if b.timeline {
			b.printTimeline(st, r, t0, "", ids, "")
		}
		rpt = append(rpt, float64(r1-r0+wr)/n)
		wpt = append(wpt, float64(w1-w0+ww)/n)
		totals = append(totals, total.Seconds())
		stop()
	}
	m := median(totals)
	b.add("100 independent `shell` tasks: whole run", fmt.Sprintf("%s (%.0f tasks/s)", secs(m), n/m), "≤ 1.5 s (issue 18)")
	b.add("Firestore reads / writes per task (independent)", fmt.Sprintf("%.1f / %.1f", median(rpt), median(wpt)), "")
}

func (b *bench) fanout() {
	const n = 200
	execLog := filepath.Join(os.TempDir(), fmt.Sprintf("updraft-bench-execs-%d", os.Getpid()))
	defer os.Remove(execLog)
	cmd := fmt.Sprintf("echo $UPDRAFT_TASK_ID >> %s", execLog)
	var sb strings.Builder
	sb.WriteString("id: fanout200\nowner: bench@example.com\nmax_active_tasks: 200\ntasks:\n")
	fmt.Fprintf(&sb, "  - {id: start, type: shell, with: {command: %q}}\n", cmd)
	for i := range n {
		fmt.Fprintf(&sb, "  - {id: w%03d, type: shell, needs: [start], with: {command: %q}}\n", i, cmd)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%03d", i)
	}
	fmt.Fprintf(&sb, "  - {id: join, type: shell, with: {command: %q}, needs: [%s]}\n", cmd, strings.Join(ids, ", "))
	var totals, rpt, wpt []float64
	var dupes, aborts, conflicts int64
	for range b.runs {
		os.Remove(execLog)
		st, stop := b.stack(200)
		b.deploy(st, sb.String())
		r0, w0 := st.Store.Counts()
		c0, a0 := st.Store.Contention()
		b.workerIO.reset()
		t0 := time.Now()
		r, total := b.runDAG(st, "fanout200")
		time.Sleep(200 * time.Millisecond)
		r1, w1 := st.Store.Counts()
		c1, a1 := st.Store.Contention()
		wr, ww := b.workerIO.totals()
		wc, wa := b.workerIO.contention()
		if b.timeline {
			b.printTimeline(st, r, t0, "start", ids, "join")
		}
		rpt = append(rpt, float64(r1-r0+wr)/(n+2))
		wpt = append(wpt, float64(w1-w0+ww)/(n+2))
		totals = append(totals, total.Seconds())
		conflicts += c1 - c0 + wc
		aborts += a1 - a0 + wa
		data, _ := os.ReadFile(execLog)
		lines := strings.Fields(string(data))
		seen := map[string]bool{}
		for _, l := range lines {
			seen[l] = true
		}
		dupes += int64(len(lines) - len(seen))
		if len(seen) != n+2 {
			fmt.Fprintf(os.Stderr, "fan-out executed %d distinct tasks; want %d\n", len(seen), n+2)
			os.Exit(1)
		}
		stop()
	}
	b.add("1 → 200 → 1 fan-out/fan-in of `shell` tasks: whole run", secs(median(totals)), "≤ 2.5 s (issue 18)")
	b.add("Firestore reads / writes per task (fan-out)", fmt.Sprintf("%.1f / %.1f", median(rpt), median(wpt)), "")
	b.add(fmt.Sprintf("fan-out, all %d runs: duplicate executions / aborted commits / lost races re-decided", b.runs),
		fmt.Sprintf("%d / %d / %d", dupes, aborts, conflicts), "0 / 0 / any")
}

// printTimeline prints, relative to t0, when the first task, the middle tasks (as
// percentiles) and the last task of a fan-out ("": none) were queued, claimed and ended: where the
// run's wall time goes.
func (b *bench) printTimeline(st *local.Stack, r *scheduler.Run, t0 time.Time, first string, middle []string, last string) {
	at := func(t *time.Time) float64 {
		if t == nil {
			return -1
		}
		return float64(t.Sub(t0)) / 1e6
	}
	one := func(id string) string {
		if id == "" {
			return "-"
		}
		ti := b.ti(st, r, id)
		return fmt.Sprintf("%s queued %.0f, claimed %.0f, ended %.0f ms", id, at(ti.QueuedAt), at(ti.StartedAt), at(ti.EndedAt))
	}
	var queued, claimed, ended []float64
	for _, id := range middle {
		ti := b.ti(st, r, id)
		queued = append(queued, at(ti.QueuedAt))
		claimed = append(claimed, at(ti.StartedAt))
		ended = append(ended, at(ti.EndedAt))
	}
	q := func(v []float64) string {
		return fmt.Sprintf("p0 %.0f, p50 %.0f, p90 %.0f, p100 %.0f ms", pct(v, 0), pct(v, 50), pct(v, 90), pct(v, 100))
	}
	fmt.Fprintf(os.Stderr, "  timeline: %s\n    middle queued: %s\n    middle claimed: %s\n    middle ended: %s\n    %s\n",
		one(first), q(queued), q(claimed), q(ended), one(last))
}

// warmUp runs -warmup tasks, unmeasured: freshly started emulator JVMs answer about twice
// as slowly until they have served some thousands of operations, and the table is for the
// steady state a long-running `make dev` is in.
func (b *bench) warmUp(n int) {
	if n <= 0 {
		return
	}
	fmt.Fprintf(os.Stderr, "warming up the emulators with %d tasks…\n", n)
	var sb strings.Builder
	fmt.Fprintf(&sb, "id: warmup\nowner: bench@example.com\nmax_active_tasks: %d\ntasks:\n", n)
	for i := range n {
		fmt.Fprintf(&sb, "  - {id: t%04d, type: shell, with: {command: \"true\"}}\n", i)
	}
	st, stop := b.stack(64)
	defer stop()
	b.deploy(st, sb.String())
	b.runDAG(st, "warmup")
}

// retry measures a failed attempt → its no-delay retry claimed.
func (b *bench) retry() {
	const tries = 6
	src := fmt.Sprintf(`id: flaky
owner: bench@example.com
tasks:
  - id: t
    type: shell
    retries: %d
    retry_delay: 0s
    with: {command: '[ "$UPDRAFT_TRY_NUMBER" -lt %d ] && exit 1; true'}
`, tries-1, tries)
	var p50s []float64
	for range b.runs {
		st, stop := b.stack(8)
		b.deploy(st, src)
		r, _ := b.runDAG(st, "flaky")
		atts, err := st.Store.ListAttempts(b.ctx, r.DagID, r.RunID, "t")
		must(err)
		var lat []float64
		for i := 1; i < len(atts); i++ {
			lat = append(lat, float64(atts[i].Rec.StartedAt.Sub(*atts[i-1].Rec.EndedAt))/1e6)
		}
		if len(lat) != tries-1 {
			fmt.Fprintf(os.Stderr, "retry bench: %d attempts; want %d\n", len(atts), tries)
			os.Exit(1)
		}
		p50s = append(p50s, pct(lat, 50))
		stop()
	}
	b.add("failed attempt → its no-delay retry claimed, p50", ms(median(p50s)), "≤ 1 s")
}

func (b *bench) tick(n int) {
	st, stop := b.stack(1)
	defer stop()
	// Idle DAGs: scheduled yearly, first due next year, so no tick has anything to do.
	start := time.Now().AddDate(1, 0, 0).Format("2006-01-02")
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				b.deploy(st, fmt.Sprintf("id: idle_%05d\nowner: bench@example.com\nschedule: \"0 0 1 1 *\"\nstart: %s\ntasks:\n  - {id: a, type: noop}\n", i, start))
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	var durs []float64
	var reads int64
	for range max(5, b.runs) {
		rep, err := st.Engine.Tick(b.ctx)
		must(err)
		durs = append(durs, float64(rep.Duration)/1e6)
		reads += rep.Reads
	}
	b.add(fmt.Sprintf("one tick with %d idle DAGs deployed", n), fmt.Sprintf("%s, %d documents read", ms(median(durs)), reads), "≤ 100 ms at 10,000; reads only what is due")
	_ = engine.Unchanged
	_ = schedule.Interval{}
}

// dueTick measures one tick that finds n DAGs due at once and creates (and starts) a run
// for each: a fresh stack per repetition, n minutely DAGs whose first interval has just
// passed.
func (b *bench) dueTick(n int) {
	var durs, created []float64
	for range max(5, b.runs) {
		st, stop := b.stack(1)
		start := time.Now().UTC().Truncate(time.Minute).Add(-2 * time.Minute).Format(time.RFC3339)
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 32 {
			wg.Go(func() {
				for i := range jobs {
					b.deploy(st, fmt.Sprintf("id: due_%05d\nowner: bench@example.com\nschedule: \"* * * * *\"\nstart: %s\ntasks:\n  - {id: a, type: noop}\n", i, start))
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		rep, err := st.Engine.Tick(b.ctx)
		must(err)
		if rep.RunsCreated != n || len(rep.Errors) > 0 {
			fmt.Fprintf(os.Stderr, "due tick: created %d runs of %d due; errors %v\n", rep.RunsCreated, n, rep.Errors)
			os.Exit(1)
		}
		created = append(created, float64(rep.CreatedIn)/1e6)
		durs = append(durs, float64(rep.Duration)/1e6)
		stop()
	}
	sort.Float64s(created)
	b.add(fmt.Sprintf("tick creating %d due runs", n), fmt.Sprintf("%s (min %s, max %s)", secs(median(created)/1e3), secs(created[0]/1e3), secs(created[len(created)-1]/1e3)), "≤ 5 s")
	b.add(fmt.Sprintf("the same tick, its %d runs also started (one noop each, done)", n), secs(median(durs)/1e3), "")
}

// noopChain measures a manual run of an n-task noop chain: submitted as the CLI does, started
// and cascaded by the advancer.
func (b *bench) noopChain(n int) {
	var sb strings.Builder
	sb.WriteString("id: noop_chain\nowner: bench@example.com\ntasks:\n")
	for i := range n {
		needs := ""
		if i > 0 {
			needs = fmt.Sprintf(", needs: [n%05d]", i-1)
		}
		fmt.Fprintf(&sb, "  - {id: n%05d, type: noop%s}\n", i, needs)
	}
	var durs []float64
	for range b.runs {
		st, stop := b.stack(1)
		b.deploy(st, sb.String())
		t0 := time.Now()
		r, err := st.Engine.SubmitTrigger(b.ctx, "noop_chain", nil, time.Now())
		must(err)
		for {
			v, err := st.Store.GetRun(b.ctx, r.DagID, r.RunID)
			must(err)
			if v.Rec.State.Finished() {
				durs = append(durs, float64(v.Rec.EndedAt.Sub(t0))/1e6)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
	}
	b.add(fmt.Sprintf("%d-task noop chain, trigger → run success", n), secs(median(durs)/1e3), "seconds, not minutes")
}

func (b *bench) rss() {
	var vals []float64
	for range b.runs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(err)
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		cmd := exec.Command(filepath.Join(b.bin, "updraft-scheduler"))
		cmd.Env = append(os.Environ(), "GOOGLE_CLOUD_PROJECT=bench-rss", "HOST=127.0.0.1", "PORT="+port, "UPDRAFT_AUTH=off")
		cmd.Env = append(cmd.Env, b.set.Env()...)
		must(cmd.Start())
		url := "http://127.0.0.1:" + port
		for {
			if resp, err := http.Get(url + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for range 3 {
			resp, err := http.Post(url+"/tick", "application/json", nil)
			must(err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(time.Second) // idle
		vals = append(vals, float64(rssKB(cmd.Process.Pid))/1024)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	b.add("scheduler service idle RSS (after 3 ticks)", fmt.Sprintf("%.1f MB", median(vals)), "≤ 40 MB")
}

func (b *bench) ti(st *local.Stack, r *scheduler.Run, task string) scheduler.TaskInstance {
	v, err := st.Store.GetTaskInstance(b.ctx, r.DagID, r.RunID, task)
	must(err)
	return v.Rec
}

func (b *bench) attempt(st *local.Stack, r *scheduler.Run, task string) scheduler.Attempt {
	ti := b.ti(st, r, task)
	a, err := st.Store.GetAttempt(b.ctx, scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: task, AttemptID: ti.AttemptID})
	must(err)
	return a.Rec
}

// statsWriter collects the counts workers print when UPDRAFT_WORKER_STATS is set.
type statsWriter struct {
	mu                               sync.Mutex
	reads, writes, conflicts, aborts int64
	buf                              bytes.Buffer
	ops                              map[string]int64 // by operation, with -trace
}

func (s *statsWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	sc := bufio.NewScanner(bytes.NewReader(s.buf.Bytes()))
	var rest []byte
	for sc.Scan() {
		line := sc.Text()
		var r, w, c, ab int64
		if _, err := fmt.Sscanf(line, "updraft-worker-stats reads=%d writes=%d conflicts=%d aborted=%d", &r, &w, &c, &ab); err == nil {
			s.reads += r
			s.writes += w
			s.conflicts += c
			s.aborts += ab
		} else if op, ok := strings.CutPrefix(line, "updraft-worker-op "); ok {
			var n int64
			var key string
			if k := strings.IndexByte(op, ' '); k > 0 {
				fmt.Sscan(op[:k], &n)
				key = op[k+1:]
			}
			if s.ops == nil {
				s.ops = map[string]int64{}
			}
			s.ops["worker: "+key] += n
		} else if strings.Contains(line, "level=ERROR") || strings.Contains(line, "\"level\":\"ERROR\"") {
			fmt.Fprintln(os.Stderr, "worker:", line)
		}
	}
	if i := bytes.LastIndexByte(s.buf.Bytes(), '\n'); i >= 0 {
		rest = append(rest, s.buf.Bytes()[i+1:]...)
	}
	s.buf.Reset()
	s.buf.Write(rest)
	return len(p), nil
}

// printOps prints the operations of one run by where they were made, per task.
func (b *bench) printOps(local map[string]int64, tasks int) {
	b.workerIO.mu.Lock()
	all := map[string]int64{}
	for k, v := range b.workerIO.ops {
		all[k] = v
	}
	b.workerIO.mu.Unlock()
	for k, v := range local {
		all["stack: "+k] += v
	}
	var lines []string
	for k, v := range all {
		lines = append(lines, fmt.Sprintf("  %6.2f %s", float64(v)/float64(tasks), k))
	}
	sort.Strings(lines)
	fmt.Fprintln(os.Stderr, "operations per task, by where they were made:")
	fmt.Fprintln(os.Stderr, strings.Join(lines, "\n"))
}

func (s *statsWriter) reset() {
	s.mu.Lock()
	s.reads, s.writes, s.conflicts, s.aborts = 0, 0, 0, 0
	s.ops = nil
	s.mu.Unlock()
}

func (s *statsWriter) contention() (int64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conflicts, s.aborts
}
func (s *statsWriter) totals() (int64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.writes
}

func pct(v []float64, p int) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(v float64) string   { return fmt.Sprintf("%.0f ms", v) }
func secs(v float64) string { return fmt.Sprintf("%.2f s", v) }

func rssKB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			n, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.0f GiB RAM", float64(n)/1024/1024)
		}
	}
	return ""
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
