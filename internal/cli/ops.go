package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

func cmdPause(ctx context.Context, a *App, args []string) error { return setPaused(ctx, a, args, true) }
func cmdUnpause(ctx context.Context, a *App, args []string) error {
	return setPaused(ctx, a, args, false)
}

func setPaused(ctx context.Context, a *App, args []string, paused bool) error {
	if len(args) != 1 {
		return usagef("name one DAG id")
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := eng.SetPaused(ctx, args[0], paused); err != nil {
		return err
	}
	if paused {
		fmt.Fprintf(a.Stdout, "paused %s: it creates no runs until unpaused\n", args[0])
	} else {
		fmt.Fprintf(a.Stdout, "unpaused %s\n", args[0])
	}
	return nil
}

// openRun connects to the backend and resolves a RUN argument to (dag, run id).
func (a *App) openRun(ctx context.Context, ref string) (eng *engine.Engine, closeFn func(), dagID, runID string, err error) {
	eng, closeFn, _, err = a.openEngine(ctx)
	if err != nil {
		return nil, nil, "", "", err
	}
	v, err := findRun(ctx, eng.Store(), ref)
	if err != nil {
		closeFn()
		return nil, nil, "", "", err
	}
	return eng, closeFn, v.Rec.DagID, v.Rec.RunID, nil
}

func cmdTasksClear(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("tasks clear", flag.ContinueOnError)
	down := fs.Bool("downstream", false, "also clear everything downstream")
	up := fs.Bool("upstream", false, "also clear everything upstream")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("name a run and at least one task id")
	}
	eng, closeFn, dagID, runID, err := a.openRun(ctx, pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	cleared, err := eng.ClearTasks(ctx, dagID, runID, pos[1:], *down, *up)
	if err != nil {
		return err
	}
	if len(cleared) == 0 {
		fmt.Fprintln(a.Stdout, "nothing to clear: those tasks have not run yet")
		return nil
	}
	fmt.Fprintf(a.Stdout, "cleared %s in %s/%s; they run again (tries are counted on)\n", strings.Join(cleared, ", "), dagID, runID)
	return nil
}

func cmdTasksMark(ctx context.Context, a *App, args []string) error {
	if len(args) != 3 {
		return usagef("name a run, a task id, and success or failed")
	}
	state := scheduler.TaskState(args[2])
	if state != scheduler.TaskSuccess && state != scheduler.TaskFailed {
		return usagef("the state must be success or failed, not %q", args[2])
	}
	eng, closeFn, dagID, runID, err := a.openRun(ctx, args[0])
	if err != nil {
		return err
	}
	defer closeFn()
	if err := eng.MarkTask(ctx, dagID, runID, args[1], state); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "marked %s %s in %s/%s\n", args[1], state, dagID, runID)
	return nil
}

func cmdRunsClear(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one run")
	}
	eng, closeFn, dagID, runID, err := a.openRun(ctx, args[0])
	if err != nil {
		return err
	}
	defer closeFn()
	cleared, err := eng.ClearRun(ctx, dagID, runID)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "cleared %d task(s) of %s/%s; the run starts again\n", len(cleared), dagID, runID)
	return nil
}

func cmdBackfill(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	from := fs.String("from", "", "first logical date, YYYY-MM-DD in the DAG's timezone")
	to := fs.String("to", "", "last logical date, YYYY-MM-DD")
	reprocess := fs.String("reprocess", "none", "none: skip intervals that have a run; failed: re-run failed ones; completed: re-run every finished one")
	maxActive := fs.Int("max-active-runs", 0, "runs at once (default: the DAG's max_active_runs)")
	noWait := fs.Bool("no-wait", false, "return at once instead of showing progress")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *from == "" || *to == "" {
		return usagef("name one DAG and --from and --to")
	}
	if *maxActive < 0 {
		return usagef("--max-active-runs must be at least 1")
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	b, existing, err := eng.StartBackfill(ctx, engine.BackfillRequest{DagID: pos[0], From: *from, To: *to, Reprocess: *reprocess, MaxActiveRuns: *maxActive})
	if err != nil {
		return err
	}
	if existing {
		fmt.Fprintf(a.Stdout, "backfill %s is already running; following it\n", b.ID)
	} else {
		fmt.Fprintf(a.Stdout, "backfill %s: %d interval(s), reprocess %s, up to %d run(s) at once\n", b.ID, b.Total, b.Reprocess, b.MaxActiveRuns)
	}
	if *noWait {
		return nil
	}
	fmt.Fprintln(a.Stdout, "(Ctrl-C stops watching; the backfill goes on: `updraft backfill status "+b.DagID+"`)")
	return followBackfill(ctx, a, eng, b.ID)
}

// followBackfill draws a progress bar until the backfill ends.
func followBackfill(ctx context.Context, a *App, eng *engine.Engine, id string) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	last := ""
	stopped := func() error {
		fmt.Fprintf(a.Stdout, "stopped watching; backfill %s continues server-side (`updraft backfill status %s`)\n", id, strings.SplitN(id, "~", 2)[0])
		return nil
	}
	for {
		line, state, err := backfillLine(ctx, eng, id)
		if ctx.Err() != nil {
			return stopped() // Ctrl-C: a read cut short is not an error
		}
		if err != nil {
			return err
		}
		if line != last {
			fmt.Fprintln(a.Stdout, line)
			last = line
		}
		if state != scheduler.BackfillRunning {
			return nil
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-t.C:
		}
	}
}

func backfillLine(ctx context.Context, eng *engine.Engine, id string) (string, string, error) {
	v, err := eng.Store().GetBackfill(ctx, id)
	if err != nil {
		return "", "", err
	}
	b := v.Rec
	// Only the runs of its latest start: a range started again must not count twice.
	finished, err := eng.Store().CountBackfillRuns(ctx, b.RunsKey(), []string{string(scheduler.RunSuccess), string(scheduler.RunFailed)})
	if err != nil {
		return "", "", err
	}
	failed, err := eng.Store().CountBackfillRuns(ctx, b.RunsKey(), []string{string(scheduler.RunFailed)})
	if err != nil {
		return "", "", err
	}
	done := finished + b.Skipped
	const width = 30
	n := 0
	if b.Total > 0 {
		n = min(width, done*width/b.Total)
	}
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	return fmt.Sprintf("[%s] %d/%d  %s · %d run · %d re-run · %d skipped · %d failed", bar, done, b.Total, b.State,
		b.Created, b.Rerun, b.Skipped, failed), b.State, nil
}

func cmdBackfillStatus(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one DAG id")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	fills, err := st.ListBackfills(ctx, args[0])
	if err != nil {
		return err
	}
	if len(fills) == 0 {
		fmt.Fprintf(a.Stdout, "no backfills of %s\n", args[0])
		return nil
	}
	tz := "UTC" // the DAG's timezone, as every other table of the DAG
	if d, err := st.GetDAG(ctx, args[0]); err == nil {
		tz = zoneName(d.Rec.Timezone)
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "BACKFILL\tSTATE\tINTERVALS\tRUN\tRE-RUN\tSKIPPED\tREPROCESS\tSTARTED (%s)\n", tz)
	for _, v := range fills {
		b := v.Rec
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.State, b.Total, b.Created, b.Rerun, b.Skipped, b.Reprocess, inZone(b.CreatedAt, tz))
	}
	return w.Flush()
}

func cmdBackfillCancel(ctx context.Context, a *App, args []string) error {
	if len(args) != 1 {
		return usagef("name one backfill id (see `updraft backfill status DAG`)")
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := eng.CancelBackfill(ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "cancelled %s: no more runs will be created; runs in flight go on\n", args[0])
	return nil
}
