package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
)

// cmdDBClean deletes finished runs whose logical date is before --before, with their task
// instances and attempts: what Firestore's TTL does after the retention on GCP, on demand,
// and on the emulators, which have no TTL.
func cmdDBClean(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("db clean", flag.ContinueOnError)
	before := fs.String("before", "", "delete runs whose logical date is before this date (YYYY-MM-DD, UTC, or RFC 3339)")
	dry := fs.Bool("dry-run", false, "count what would be deleted and delete nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *before == "" {
		return usagef("--before DATE is required")
	}
	t, err := parseCleanDate(*before)
	if err != nil {
		return usagef("%v", err)
	}
	eng, closeFn, b, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	if ret := eng.Retention(); t.After(eng.Now().Add(-ret)) {
		fmt.Fprintf(a.Stderr, "note: %s is within the retention period (%s): finished runs from %s on are deleted before their time\n",
			t.Format("2006-01-02"), days(ret), eng.Now().Add(-ret).UTC().Format("2006-01-02"))
	}
	rep, err := eng.CleanRuns(ctx, t, *dry, nil)
	printClean(a, rep)
	if err != nil || *dry || b.LogDir == "" {
		return err
	}
	n, err := removeRunLogs(ctx, eng.Store(), b.LogDir)
	if n > 0 {
		fmt.Fprintf(a.Stdout, "deleted the logs of %d run(s) from %s\n", n, b.LogDir)
	}
	return err
}

// removeRunLogs deletes the local log folders (LOG_DIR/DAG/RUN_ID) of runs that are no
// longer in the store: deleted by this clean, by an earlier one, or replaced. Logs go with
// their runs, as Cloud Logging's retention does on GCP.
func removeRunLogs(ctx context.Context, st *fsstore.Store, logDir string) (int, error) {
	dags, err := os.ReadDir(logDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, d := range dags {
		if !d.IsDir() || dag.ValidateID(d.Name()) != nil {
			continue
		}
		runs, err := os.ReadDir(filepath.Join(logDir, d.Name()))
		if err != nil {
			return removed, err
		}
		for _, r := range runs {
			if !r.IsDir() {
				continue
			}
			v, err := st.GetRun(ctx, d.Name(), r.Name())
			if err == nil && v.Rec.RunID == r.Name() {
				continue
			}
			if err != nil && !errors.Is(err, fsstore.ErrNotFound) {
				return removed, err
			}
			if err := os.RemoveAll(filepath.Join(logDir, d.Name(), r.Name())); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

// parseCleanDate reads YYYY-MM-DD (midnight UTC) or an RFC 3339 time.
func parseCleanDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--before %q is not a date like 2025-01-31 or 2025-01-31T09:00:00Z", s)
	}
	return t.UTC(), nil
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func printClean(a *App, rep engine.CleanReport) {
	verb := "deleted"
	if rep.DryRun {
		verb = "dry run, nothing deleted: would delete"
	}
	fmt.Fprintf(a.Stdout, "%s %d run(s), %d task instance(s), %d attempt(s) with a logical date before %s\n",
		verb, rep.Runs, rep.TaskInstances, rep.Attempts, rep.Before.Format(time.RFC3339))
	if rep.Unfinished > 0 {
		more := ""
		if len(rep.Skipped) < rep.Unfinished {
			more = fmt.Sprintf(", and %d more", rep.Unfinished-len(rep.Skipped))
		}
		fmt.Fprintf(a.Stdout, "kept %d unfinished run(s) (clean again once they finish): %s%s\n",
			rep.Unfinished, strings.Join(rep.Skipped, ", "), more)
	}
	if rep.Changed > 0 {
		fmt.Fprintf(a.Stdout, "kept %d run(s) that changed while cleaning (cleared or marked)\n", rep.Changed)
	}
}
