package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

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
	set, err := a.emulatorSet(ctx)
	if err != nil {
		return err
	}
	defer set.Stop()
	workerCmd, err := a.workerCmd()
	if err != nil {
		return err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	project := "updraft-test-" + hex.EncodeToString(b[:])
	stack, err := local.Open(ctx, local.Config{
		Project: project, Env: set.Env(), LogDir: filepath.Join(a.home(), "logs"), WorkerCmd: workerCmd,
		TickEvery: time.Second, Log: a.logger(), WorkerStderr: a.Stderr,
	})
	if err != nil {
		return err
	}
	defer stack.Close()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = stack.Run(runCtx) }()
	defer func() { stop(); wg.Wait() }()

	if _, err := stack.Engine.Deploy(ctx, d, src); err != nil {
		return err
	}
	if err := stack.Engine.SetPaused(ctx, d.ID, true); err != nil { // only the test run, no schedule
		return err
	}
	run, err := stack.Engine.CreateRun(ctx, engine.NewRun{
		DagID: d.ID, Version: d.Source.Hash, Type: scheduler.RunManual, Logical: iv.Start, Interval: iv,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "testing %s: logical date %s, data interval [%s, %s)\n", d.ID,
		iv.Start.In(loc).Format(time.RFC3339), iv.Start.In(loc).Format(time.RFC3339), iv.End.In(loc).Format(time.RFC3339))
	final, err := watchRun(ctx, a, stack, run)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "run %s: %s\n", run.RunID, final)
	if final != scheduler.RunSuccess {
		return silentError{1}
	}
	return nil
}

// watchRun prints task state changes until the run finishes.
func watchRun(ctx context.Context, a *App, s *local.Stack, run *scheduler.Run) (scheduler.RunState, error) {
	seen := map[string]string{}
	start := time.Now()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		tis, err := s.Store.ListTaskInstances(ctx, run.DagID, run.RunID)
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
		r, err := s.Store.GetRun(ctx, run.DagID, run.RunID)
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
