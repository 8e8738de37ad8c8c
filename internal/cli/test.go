package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/cloudlog"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/scheduler"
	"google.golang.org/api/option"
)

// cmdTest runs one run of a DAG file for a logical date in a throwaway project on the
// emulators (running ones, or its own), printing each task's state as it changes. It exits 0
// only if the run succeeded: the loop a user lives in while writing a DAG. The test DAG is
// deployed paused, so the test run is its only run; run again for the same date, it replaces
// the previous test run with one of the file as it is now. Stdout is the progress table only:
// the stack's own logs go to a file named at the end (to stderr with -v).
func cmdTest(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	date := fs.String("date", "", "logical date YYYY-MM-DD in the DAG's timezone (default today)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "print the stack's logs to stderr instead of a file")
	bundleDir := fs.String("bundle", "", "the DAG's bundle folder, used in place (default: the nearest folder above the file with a .updraftignore, else the file's folder)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG file")
	}
	d, err := parseOne(pos[0])
	if err != nil {
		return err
	}
	src, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if *bundleDir == "" {
		*bundleDir = bundle.FindRoot(pos[0])
	}
	if err := pinLocal([]*dag.DAG{d}, *bundleDir); err != nil {
		return err
	}
	loc := d.Location()
	day := time.Now().In(loc)
	if *date != "" {
		if day, err = time.ParseInLocation("2006-01-02", *date, loc); err != nil {
			return usagef("--date %q is not YYYY-MM-DD", *date)
		}
	}
	tt, err := engine.Timetable(d, day)
	if err != nil {
		return err
	}
	tt.Start, tt.End = time.Time{}, nil // a test run may be for any date
	iv, ok := tt.ForDate(day.Year(), day.Month(), day.Day())
	if !ok {
		return fmt.Errorf("DAG %s has no run whose logical date is %s (schedule %q)", d.ID, day.Format("2006-01-02"), d.Schedule)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	logw, logPath, closeLog, err := a.testLog(d.ID, *verbose)
	if err != nil {
		return err
	}
	defer closeLog()
	if logPath != "" {
		defer fmt.Fprintf(a.Stderr, "the stack's log: %s\n", logPath)
	}
	tgt, err := a.testTarget(ctx, d, logw)
	if err != nil {
		return err
	}
	defer tgt.cleanup()
	eng := tgt.eng
	d.Paused = true // deployed paused: the test run is its only run, never a scheduled one
	if tgt.shared {
		if err := eng.SetPaused(ctx, d.ID, true); err != nil && !strings.Contains(err.Error(), "no DAG") {
			return err
		}
	}
	if _, err := eng.Deploy(ctx, d, src); err != nil {
		return err
	}
	if err := eng.SetPaused(ctx, d.ID, true); err != nil { // a test DAG deployed before pausing was
		return err
	}
	if tgt.shared { // again for this date: the previous test run makes room for this one
		if _, err := eng.DeleteRunAt(ctx, d.ID, iv.Start, true); err != nil {
			return err
		}
	}
	run, err := eng.CreateRun(ctx, engine.NewRun{
		DagID: d.ID, Version: d.Source.Hash, Type: scheduler.RunManual, Logical: iv.Start, Interval: iv,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "testing %s %s: logical date %s, data interval [%s, %s)\n", d.ID, tgt.where,
		iv.Start.In(loc).Format(time.RFC3339), iv.Start.In(loc).Format(time.RFC3339), iv.End.In(loc).Format(time.RFC3339))
	final, err := watchRun(ctx, a, eng.Store(), run)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "run %s: %s\n", run.RunID, final)
	if final != scheduler.RunSuccess {
		return silentError{1}
	}
	return nil
}

// testLog is where the stack's logs go during a test: a file under the home's logs (its path
// is returned), or stderr with -v.
func (a *App) testLog(dagID string, verbose bool) (io.Writer, string, func(), error) {
	if verbose {
		return a.Stderr, "", func() {}, nil
	}
	dir := filepath.Join(a.home(), "test-logs") // not in the attempt logs' folder, which db clean tidies
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", nil, err
	}
	p := filepath.Join(dir, dagID+".log")
	f, err := os.Create(p)
	if err != nil {
		return nil, "", nil, err
	}
	return f, p, func() { f.Close() }, nil
}

// testTarget is where a test run goes.
type testTarget struct {
	eng     *engine.Engine
	cleanup func()
	where   string
	// shared is set in a running `make dev`: the test DAG lives on between tests.
	shared bool
}

// testTarget decides where a test run goes. With `make dev` running, into dev's project under
// the DAG id test__ID (paused, so it never schedules), executed by dev's dispatcher with dev's
// stand-ins, BigQuery and connections. Otherwise into a throwaway project with a stack of its
// own: the emulators (running ones, or started now), the stand-ins, and BigQuery only when the
// DAG uses it, seeded as `make dev` seeds them.
func (a *App) testTarget(ctx context.Context, d *dag.DAG, logw io.Writer) (*testTarget, error) {
	// JSON lines to the file, the console format with -v: one format either way (workers
	// write JSON lines of their own).
	log := cloudlog.New(logw)
	if logw == a.Stderr {
		log = a.logger()
		logw = newConsoleLines(a.Stderr)
	}
	if st := a.readDevState(); st != nil && a.Getenv("GOOGLE_CLOUD_PROJECT") == "" {
		d.ID = "test__" + d.ID
		if err := dag.ValidateID(d.ID); err != nil {
			return nil, fmt.Errorf("test id %s: %w", d.ID, err)
		}
		if host := envValue(st.StandIns, bqemu.EnvVar); host != "" && dagUsesBigQuery(d) {
			err := local.WaitBigQuery(ctx, host, st.Project, func(s string) { fmt.Fprintln(a.Stderr, s) })
			if err != nil {
				return nil, err
			}
		}
		eng, closeFn, _, err := a.openEngineLog(ctx, log)
		if err != nil {
			return nil, err
		}
		return &testTarget{eng: eng, cleanup: closeFn, where: "(as " + d.ID + " in the running make dev)", shared: true}, nil
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*testTarget, error) { cleanup(); return nil, err }
	set, err := a.emulatorSet(ctx)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { set.Stop() })
	workerCmd, err := a.workerCmd()
	if err != nil {
		return fail(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	project := "updraft-test-" + hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp("", "updraft-test-")
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	standIns, err := local.StartStandIns(ctx, local.StandInConfig{Dir: dir, SlackUsers: devSlackUsers})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, standIns.Stop)
	bq, err := local.NewBigQuery(local.BigQueryConfig{Project: project, LogDir: dir,
		OnReady: func(ctx context.Context, emulator []option.ClientOption) error {
			return local.SeedExamples(ctx, project, time.Now(), emulator...)
		},
		OnProgress: func(line string) { fmt.Fprintln(a.Stderr, "BigQuery emulator: "+line) },
	})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { bq.Stop() })
	if dagUsesBigQuery(d) { // a test waits for it: its tasks can't run without it
		bq.Want()
		if err := bq.Wait(ctx); err != nil {
			return fail(err)
		}
	}
	env := append(append(set.Env(), standIns.Env()...), bq.Env()...)
	engCfg, err := engine.ConfigFromEnv(a.Getenv)
	if err != nil {
		return fail(err)
	}
	stack, err := local.Open(ctx, local.Config{
		Project: project, Env: env, LogDir: filepath.Join(a.home(), "logs"), WorkerCmd: workerCmd, Engine: engCfg,
		TickEvery: time.Second, Log: log, WorkerStderr: logw,
	})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { stack.Close() })
	api := httptest.NewServer(http.HandlerFunc(local.SampleOrders))
	cleanups = append(cleanups, api.Close)
	if err := seedDevSecrets(ctx, project, api.URL); err != nil {
		return fail(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = stack.Run(runCtx) }()
	cleanups = append(cleanups, func() { stop(); wg.Wait() })
	return &testTarget{eng: stack.Engine, cleanup: cleanup,
		where: "(in a throwaway project; the stand-ins start empty but for the examples' seeds)"}, nil
}

// dagUsesBigQuery reports whether any task of d needs the BigQuery emulator.
func dagUsesBigQuery(d *dag.DAG) bool {
	for _, t := range d.Tasks {
		if local.UsesBigQuery(t.Type) {
			return true
		}
	}
	return false
}

// watchRun prints task state changes until the run finishes.
func watchRun(ctx context.Context, a *App, st *fsstore.Store, run *scheduler.Run) (scheduler.RunState, error) {
	seen := map[string]string{}
	start := time.Now()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		// The run first, then its tasks: a finished run's tasks are all final when read.
		r, err := st.GetRun(ctx, run.DagID, run.RunID)
		if err != nil {
			return "", err
		}
		tis, err := st.ListTaskInstances(ctx, run.DagID, run.RunID)
		if err != nil {
			return "", err
		}
		for _, v := range tis {
			ti := v.Rec
			key := fmt.Sprintf("%s %d", ti.State, ti.TryNumber)
			if seen[ti.TaskID] == key || ti.State == scheduler.TaskNone {
				continue
			}
			seen[ti.TaskID] = key
			line := fmt.Sprintf("%8s  %-24s %-16s try %d/%d", time.Since(start).Round(time.Millisecond), ti.TaskID, ti.State, ti.TryNumber, ti.MaxTries)
			if ti.Error != "" && (ti.State == scheduler.TaskFailed || ti.State == scheduler.TaskUpForRetry) {
				line += "  " + firstLine(ti.Error)
			}
			fmt.Fprintln(a.Stdout, line)
		}
		if r.Rec.State.Finished() {
			return r.Rec.State, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("run %s did not finish: %w", run.RunID, ctx.Err())
		case <-poll.C:
		}
	}
}

// envValue is the value of key in a list of KEY=VALUE ("" if absent).
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
