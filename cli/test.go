package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/bundle"
	"github.com/updraft-dev/updraft/dag"
	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/fsstore"

	"github.com/updraft-dev/updraft/engine"
	"github.com/updraft-dev/updraft/local"
	"github.com/updraft-dev/updraft/scheduler"
)

// cmdTest runs one run of a DAG file for a logical date in a throwaway project on the
// emulators (running ones, or its own), printing each task's state as it changes. It exits 0
// only if the run succeeded: the loop a user lives in while writing a DAG.
func cmdTest(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	date := fs.String("date", "", "logical date YYYY-MM-DD in the DAG's timezone (default today)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long")
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
	eng, cleanup, where, err := a.testTarget(ctx, d)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, err := eng.Deploy(ctx, d, src); err != nil {
		return err
	}
	if err := eng.SetPaused(ctx, d.ID, true); err != nil { // only the test run, no schedule
		return err
	}
	run, err := eng.CreateRun(ctx, engine.NewRun{
		DagID: d.ID, Version: d.Source.Hash, Type: scheduler.RunManual, Logical: iv.Start, Interval: iv,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "testing %s %s: logical date %s, data interval [%s, %s)\n", d.ID, where,
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

// testTarget decides where a test run goes. With `make dev` running, into dev's project under
// the DAG id test__ID (paused, so it never schedules), executed by dev's dispatcher with dev's
// stand-ins, BigQuery and connections. Otherwise into a throwaway project with a stack of its
// own: the emulators (running ones, or started now), the stand-ins and BigQuery, seeded as
// `make dev` seeds them.
func (a *App) testTarget(ctx context.Context, d *dag.DAG) (*engine.Engine, func(), string, error) {
	if st := a.readDevState(); st != nil && a.Getenv("GOOGLE_CLOUD_PROJECT") == "" {
		d.ID = "test__" + d.ID
		if err := dag.ValidateID(d.ID); err != nil {
			return nil, nil, "", fmt.Errorf("test id %s: %w", d.ID, err)
		}
		eng, closeFn, _, err := a.openEngine(ctx)
		if err != nil {
			return nil, nil, "", err
		}
		return eng, closeFn, "(as " + d.ID + " in the running make dev)", nil
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	fail := func(err error) (*engine.Engine, func(), string, error) { cleanup(); return nil, nil, "", err }
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
	if _, err := bqemu.EnsureBuilt(ctx); err != nil {
		return fail(err)
	}
	bq, err := bqemu.Start(ctx, project, dir)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { bq.Stop() })
	env := append(append(set.Env(), standIns.Env()...), bq.Env()...)
	stack, err := local.Open(ctx, local.Config{
		Project: project, Env: env, LogDir: filepath.Join(a.home(), "logs"), WorkerCmd: workerCmd,
		TickEvery: time.Second, Log: a.logger(), WorkerStderr: a.Stderr,
	})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { stack.Close() })
	if err := local.SeedExamples(ctx, project, time.Now(), bq.ClientOptions()...); err != nil {
		return fail(err)
	}
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
	return stack.Engine, cleanup, "(in a throwaway project; the stand-ins start empty but for the examples' seeds)", nil
}

// watchRun prints task state changes until the run finishes.
func watchRun(ctx context.Context, a *App, st *fsstore.Store, run *scheduler.Run) (scheduler.RunState, error) {
	seen := map[string]string{}
	start := time.Now()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
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
		r, err := st.GetRun(ctx, run.DagID, run.RunID)
		if err != nil {
			return "", err
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
