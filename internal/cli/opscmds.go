package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
)

// printAffected prints what an action did, or on a dry run what it would do.
func printAffected(a *App, af console.Affected) {
	if af.DryRun {
		fmt.Fprintf(a.Stdout, "dry run, nothing changed: would %s\n", af.Summary)
	} else {
		fmt.Fprintln(a.Stdout, af.Summary)
	}
	for _, w := range af.Warnings {
		fmt.Fprintf(a.Stdout, "note: %s\n", w)
	}
}

// dagZone is the timezone a DAG's tables are shown in: the DAG's, or UTC when the DAG cannot
// be read (the table then says UTC, and its times are in UTC).
func dagZone(ctx context.Context, o console.Operations, dagID string) string {
	d, err := o.DAG(ctx, dagID)
	if err != nil {
		return "UTC"
	}
	return zoneName(d.Timezone)
}

func cmdDagsList(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("dags list", flag.ContinueOnError)
	all := fs.Bool("all", false, "also list the test__ DAGs that updraft test made")
	search := fs.String("search", "", "only DAG ids starting with this")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("dags list takes no arguments")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DAG\tSCHEDULE\tTIMEZONE\tOWNER\tSTATE\tNEXT RUN DUE\tLATEST RUNS")
	tok, tests := "", 0
	var importErrors []console.ImportError
	for first := true; first || tok != ""; first = false {
		p, err := o.ListDAGs(ctx, console.DAGQuery{Search: *search, Limit: console.MaxLimit, PageToken: tok})
		if err != nil {
			return err
		}
		if first {
			importErrors = p.ImportErrors
		}
		for _, d := range p.DAGs {
			if strings.HasPrefix(d.DagID, testDAGPrefix) && !*all {
				tests++
				continue
			}
			state := "active"
			switch {
			case !d.Active:
				state = "removed"
			case d.Paused:
				state = "paused"
			}
			next, sched := "-", d.Schedule
			if d.NextRunAt != nil {
				next = inZone(*d.NextRunAt, d.Timezone)
			}
			if sched == "" {
				sched = "(manual)"
			}
			var recent []string
			for _, r := range d.RecentRuns {
				recent = append(recent, r.State)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.DagID, sched, d.Timezone, d.Owner, state, next, strings.Join(recent, " "))
		}
		tok = p.NextPageToken
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if tests > 0 {
		fmt.Fprintf(a.Stdout, "(%d test DAG(s) from updraft test not shown: --all lists them)\n", tests)
	}
	if len(importErrors) > 0 {
		fmt.Fprintf(a.Stdout, "\n%d problem(s) in DAG files that failed to load (`updraft dags validate FILE` shows each file's):\n", len(importErrors))
		for _, ie := range importErrors {
			fmt.Fprintf(a.Stdout, "  %s\n", ie.String())
		}
	}
	return nil
}

// testDAGPrefix starts the id of a DAG that `updraft test` deployed into a running dev.
const testDAGPrefix = "test__"

// cmdDeploy is `updraft dags deploy [--prune] [--dry-run] PATH...`: it reads the DAG files
// (dag.ListFiles), stores their folder as a bundle when UPDRAFT_BUNDLE_BUCKET is set, sends
// them in one deploy, and prints one line per file; it exits 1 when a file was not deployed.
func cmdDeploy(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("dags deploy", flag.ContinueOnError)
	prune := fs.Bool("prune", false, "deactivate deployed DAGs whose files are gone (only when every file loads)")
	dryRun := fs.Bool("dry-run", false, "check the files and show what a deploy would do, deploy nothing")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("name at least one DAG file or folder")
	}
	names, err := dag.ListFiles(paths)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no DAG files (*.yaml, *.yml) under %v", paths)
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	req := console.DeployRequest{Files: []console.DAGFile{}, Prune: *prune, DryRun: *dryRun}
	// A folder is a bundle: stored first (with this machine's credentials), then named.
	root := bundleRoot(paths)
	if root != "" {
		if a.Getenv(bundle.EnvBucket) == "" {
			if hasCode(root) {
				fmt.Fprintf(a.Stderr, "note: %s is not set: the DAGs are deployed without their folder (python tasks, sql_file and include need it)\n", bundle.EnvBucket)
			}
		} else if !*dryRun {
			hash, err := a.storeBundle(ctx, root)
			if err != nil {
				return err
			}
			req.Bundle = &console.BundleUpload{Hash: hash}
		}
	}
	if req.Bundle != nil {
		req.Bundle.Root, names = bundleNaming(root, names)
	}
	unread := 0
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			p := dag.Problem{File: name, Msg: "cannot read the file: " + err.Error(), Hint: "check the file's permissions"}
			fmt.Fprintln(a.Stderr, p.Error())
			unread++
			continue
		}
		req.Files = append(req.Files, console.DAGFile{Name: filepath.ToSlash(name), Source: string(src)})
	}
	if unread > 0 && req.Prune {
		req.Prune = false
		fmt.Fprintln(a.Stderr, "not pruning: some files could not be read, and their DAGs would look gone")
	}
	if len(req.Files) == 0 {
		return silentError{1}
	}
	rep, err := o.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if rep.DryRun {
		fmt.Fprintln(a.Stdout, "dry run, nothing changed: what a deploy would do")
	}
	for _, f := range rep.Files {
		if f.Outcome == console.OutcomeFailed {
			for _, p := range f.Problems {
				fmt.Fprintln(a.Stderr, p.String())
			}
			continue
		}
		fmt.Fprintf(a.Stdout, "%-9s %s (%s)\n", f.Outcome, f.DagID, f.File)
	}
	for _, id := range rep.Pruned {
		fmt.Fprintf(a.Stdout, "pruned    %s (file gone; history kept)\n", id)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(a.Stderr, "note: %s\n", w)
	}
	if failed := rep.Failed + unread; failed > 0 {
		fmt.Fprintf(a.Stderr, "%d file(s) not deployed: fix the problems above\n", failed)
		return silentError{1}
	}
	return nil
}

// bundleNaming is the root a deploy names its bundle by and the names of its files, such
// that each name is a path under the root (the console pins each file's DAG to its path in
// the bundle): as given when they are, else absolute (a lone file whose bundle folder is
// above it, found by bundle.FindRoot).
func bundleNaming(root string, names []string) (string, []string) {
	r := filepath.ToSlash(filepath.Clean(root))
	out := make([]string, len(names))
	under := !filepath.IsAbs(root)
	for i, n := range names {
		out[i] = filepath.ToSlash(n)
		if r != "." && !strings.HasPrefix(out[i], r+"/") {
			under = false
		}
	}
	if under {
		return r, out
	}
	for i, n := range names {
		out[i] = filepath.ToSlash(absPath(n))
	}
	return filepath.ToSlash(absPath(root)), out
}

func cmdPause(ctx context.Context, a *App, open opener, args []string) error {
	return setPaused(ctx, a, open, args, "dags pause", true)
}

func cmdUnpause(ctx context.Context, a *App, open opener, args []string) error {
	return setPaused(ctx, a, open, args, "dags unpause", false)
}

func setPaused(ctx context.Context, a *App, open opener, args []string, name string, paused bool) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would do, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	af, err := o.SetPaused(ctx, pos[0], paused, *dryRun)
	if err != nil {
		return err
	}
	printAffected(a, *af)
	return nil
}

func cmdTrigger(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	confArg := fs.String("conf", "", "JSON object overriding the DAG's params")
	at := fs.String("logical-date", "", "RFC 3339 logical date (default now)")
	replace := fs.Bool("replace", false, "replace the finished run that already has this logical date")
	dryRun := fs.Bool("dry-run", false, "show the run it would start, start nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	req := console.TriggerRequest{DagID: pos[0], Replace: *replace, DryRun: *dryRun}
	if *confArg != "" {
		var conf map[string]any
		if err := json.Unmarshal([]byte(*confArg), &conf); err != nil {
			return usagef("--conf must be a JSON object, e.g. '{\"region\": \"asia\"}': %v", err)
		}
		req.Conf = json.RawMessage(*confArg)
	}
	if *at != "" {
		T, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usagef("--logical-date %q is not RFC 3339 (e.g. 2025-01-01T00:00:00+09:00)", *at)
		}
		req.LogicalDate = &T
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	// The run is created and the command returns: the advancer starts it.
	res, err := o.Trigger(ctx, req)
	if err != nil {
		return err
	}
	if res.DryRun || res.Run == nil {
		printAffected(a, res.Affected)
		return nil
	}
	fmt.Fprintf(a.Stdout, "triggered %s/%s\n", pos[0], res.Run.RunID)
	for _, w := range res.Warnings {
		fmt.Fprintf(a.Stdout, "note: %s\n", w)
	}
	return nil
}

func cmdRunsList(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("runs list", flag.ContinueOnError)
	n := fs.Int("n", 25, "how many runs, newest first")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	if *n < 1 {
		return usagef("-n must be at least 1, got %d", *n)
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	d, err := o.DAG(ctx, pos[0])
	if err != nil {
		return err
	}
	var runs []console.RunBrief
	for tok := ""; len(runs) < *n; {
		p, err := o.Runs(ctx, pos[0], console.PageQuery{Limit: min(*n-len(runs), console.MaxLimit), PageToken: tok})
		if err != nil {
			return err
		}
		runs = append(runs, p.Runs...)
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	tz := zoneName(d.Timezone)
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "RUN ID\tSTATE\tTYPE\tLOGICAL DATE (%s)\tDATA INTERVAL END (%s)\tDURATION\n", tz, tz)
	for _, r := range runs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.State, r.RunType, inZone(r.LogicalDate, tz),
			inZone(r.DataIntervalEnd, tz), duration(r.StartedAt, r.EndedAt))
	}
	return w.Flush()
}

func cmdRunsShow(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("runs show", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one run: DAG/RUN_ID, or a RUN_ID unique across DAGs")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	dagID, runID, err := resolveRun(ctx, o, pos[0])
	if err != nil {
		return err
	}
	r, err := o.Run(ctx, dagID, runID)
	if err != nil {
		return err
	}
	tz := dagZone(ctx, o, dagID)
	fmt.Fprintf(a.Stdout, "run %s/%s: %s\n  logical date %s, data interval [%s, %s) (%s), %s, version %.12s\n",
		dagID, r.RunID, r.State, inZone(r.LogicalDate, tz), inZone(r.DataIntervalStart, tz),
		inZone(r.DataIntervalEnd, tz), tz, duration(r.StartedAt, r.EndedAt), r.Version)
	if r.Bundle != "" {
		fmt.Fprintf(a.Stdout, "  bundle %s\n", r.Bundle)
	}
	attempts := map[string]console.AttemptView{}
	for _, at := range r.Attempts {
		attempts[at.AttemptID] = at
	}
	now := a.now()
	var rendered []string
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tSTATE\tTRY\tDURATION\tNOTE")
	for _, t := range r.Tasks {
		note := firstLine(t.Error)
		if at, ok := attempts[t.AttemptID]; ok && t.State == string(scheduler.TaskRunning) && at.LeaseExpiresAt != nil && at.LeaseExpiresAt.Before(now) {
			note = fmt.Sprintf("lease expired %s ago (worker %s lost?)", now.Sub(*at.LeaseExpiresAt).Round(time.Second), at.Worker)
		}
		if t.MapCount != nil && note == "" {
			note = fmt.Sprintf("for_each: %d instances", *t.MapCount)
		}
		st := scheduler.TaskState(t.State)
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", t.TaskID, t.State, t.Try, t.MaxTries, duration(t.StartedAt, endedIfFinished(st, t.EndedAt)), note)
		if t.AttemptID != "" && t.Try > 0 {
			if at, err := o.Attempt(ctx, dagID, r.RunID, t.TaskID, t.Try); err == nil && len(at.Rendered) > 0 {
				rendered = append(rendered, fmt.Sprintf("  %s: %s", t.TaskID, shorten(readableJSON(string(at.Rendered)), 300)))
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(rendered) > 0 {
		fmt.Fprintln(a.Stdout, "rendered arguments (secrets masked):")
		for _, l := range rendered {
			fmt.Fprintln(a.Stdout, l)
		}
	}
	return nil
}

func cmdRunsClear(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("runs clear", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would clear, clear nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one run: DAG/RUN_ID, or a RUN_ID unique across DAGs")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	dagID, runID, err := resolveRun(ctx, o, pos[0])
	if err != nil {
		return err
	}
	af, err := o.ClearRun(ctx, dagID, runID, *dryRun)
	if err != nil {
		return err
	}
	printAffected(a, *af)
	return nil
}

func cmdTasksClear(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("tasks clear", flag.ContinueOnError)
	down := fs.Bool("downstream", false, "also clear everything downstream")
	up := fs.Bool("upstream", false, "also clear everything upstream")
	dryRun := fs.Bool("dry-run", false, "show what it would clear, clear nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("name a run (DAG/RUN_ID) and at least one task id")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	dagID, runID, err := resolveRun(ctx, o, pos[0])
	if err != nil {
		return err
	}
	af, err := o.Clear(ctx, console.ClearRequest{DagID: dagID, RunID: runID, TaskIDs: pos[1:], Downstream: *down, Upstream: *up, DryRun: *dryRun})
	if err != nil {
		return err
	}
	printAffected(a, *af)
	return nil
}

func cmdTasksMark(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("tasks mark", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would do, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usagef("name a run (DAG/RUN_ID), a task id, and success or failed")
	}
	if s := scheduler.TaskState(pos[2]); s != scheduler.TaskSuccess && s != scheduler.TaskFailed {
		return usagef("the state must be success or failed, not %q", pos[2])
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	dagID, runID, err := resolveRun(ctx, o, pos[0])
	if err != nil {
		return err
	}
	af, err := o.Mark(ctx, console.MarkRequest{DagID: dagID, RunID: runID, TaskID: pos[1], State: pos[2], DryRun: *dryRun})
	if err != nil {
		return err
	}
	printAffected(a, *af)
	return nil
}

func cmdBackfill(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	from := fs.String("from", "", "first logical date, YYYY-MM-DD in the DAG's timezone")
	to := fs.String("to", "", "last logical date, YYYY-MM-DD")
	reprocess := fs.String("reprocess", "none", "none: skip intervals that have a run; failed: re-run failed ones; completed: re-run every finished one")
	maxActive := fs.Int("max-active-runs", 0, "runs at once (default: the DAG's max_active_runs)")
	dryRun := fs.Bool("dry-run", false, "list the intervals it would run, start nothing")
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
	o, err := open(ctx)
	if err != nil {
		return err
	}
	res, err := o.Backfill(ctx, console.BackfillRequest{DagID: pos[0], From: *from, To: *to, Reprocess: *reprocess, MaxActiveRuns: *maxActive, DryRun: *dryRun})
	if err != nil {
		return err
	}
	b := res.Backfill
	if res.DryRun || b == nil {
		printAffected(a, res.Affected)
		return nil
	}
	if res.Existing {
		fmt.Fprintf(a.Stdout, "backfill %s is already running; following it\n", b.BackfillID)
	} else {
		fmt.Fprintf(a.Stdout, "backfill %s: %d interval(s), reprocess %s, up to %d run(s) at once\n", b.BackfillID, b.Total, b.Reprocess, b.MaxActiveRuns)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.Stdout, "note: %s\n", w)
	}
	if *noWait {
		return nil
	}
	fmt.Fprintf(a.Stdout, "(Ctrl-C stops watching; the backfill goes on: `%s backfill status %s`)\n", a.name(), b.DagID)
	return followBackfill(ctx, a, o, b.DagID, b.BackfillID)
}

// followBackfill draws a progress bar until the backfill ends.
func followBackfill(ctx context.Context, a *App, o console.Operations, dagID, id string) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	last := ""
	stopped := func() error {
		fmt.Fprintf(a.Stdout, "stopped watching; backfill %s continues server-side (`%s backfill status %s`)\n", id, a.name(), dagID)
		return nil
	}
	for {
		if ctx.Err() != nil {
			return stopped() // Ctrl-C: a read cut short is not an error
		}
		line, state, err := backfillLine(ctx, o, dagID, id)
		if ctx.Err() != nil {
			return stopped()
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

// backfillLine is a backfill's progress: its intervals done (runs finished, intervals
// skipped) out of its total.
func backfillLine(ctx context.Context, o console.Operations, dagID, id string) (string, string, error) {
	bs, err := o.Backfills(ctx, dagID)
	if err != nil {
		return "", "", err
	}
	for _, b := range bs {
		if b.BackfillID != id {
			continue
		}
		done := b.Finished + b.Skipped
		const width = 30
		n := 0
		if b.Total > 0 {
			n = min(width, done*width/b.Total)
		}
		bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
		return fmt.Sprintf("[%s] %d/%d  %s · %d run · %d re-run · %d skipped · %d failed", bar, done, b.Total, b.State,
			b.Created, b.Rerun, b.Skipped, b.Failed), b.State, nil
	}
	return "", "", console.Errorf(console.CodeNotFound, "no backfill %q of %s", id, dagID)
}

func cmdBackfillStatus(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 1 {
		return usagef("name one DAG id")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	fills, err := o.Backfills(ctx, args[0])
	if err != nil {
		return err
	}
	if len(fills) == 0 {
		fmt.Fprintf(a.Stdout, "no backfills of %s\n", args[0])
		return nil
	}
	tz := dagZone(ctx, o, args[0]) // the DAG's timezone, as every other table of the DAG
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "BACKFILL\tSTATE\tINTERVALS\tRUN\tRE-RUN\tSKIPPED\tREPROCESS\tSTARTED (%s)\n", tz)
	for _, b := range fills {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", b.BackfillID, b.State, b.Total, b.Created, b.Rerun, b.Skipped, b.Reprocess, inZone(b.CreatedAt, tz))
	}
	return w.Flush()
}

func cmdBackfillCancel(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("backfill cancel", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would do, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one backfill id (see `updraft backfill status DAG`)")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	af, err := o.CancelBackfill(ctx, pos[0], *dryRun)
	if err != nil {
		return err
	}
	printAffected(a, *af)
	return nil
}

func cmdLogs(ctx context.Context, a *App, open opener, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	try := fs.Int("try", 0, "which try (default: every try)")
	raw := fs.Bool("json", false, "print each entry as a JSON line")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("name a run (DAG/RUN_ID) and a task id")
	}
	if *try < 0 {
		return usagef("--try must be at least 1, got %d", *try)
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	dagID, runID, err := resolveRun(ctx, o, pos[0])
	if err != nil {
		return err
	}
	attempts, err := o.Attempts(ctx, dagID, runID, pos[1])
	if err != nil {
		return err
	}
	if len(attempts) == 0 {
		fmt.Fprintf(a.Stdout, "task %s has not started yet in %s/%s\n", pos[1], dagID, runID)
		return nil
	}
	loc, err := time.LoadLocation(dagZone(ctx, o, dagID)) // log times in the DAG's timezone, as the UI shows them
	if err != nil {
		loc = time.UTC
	}
	// A deferred task's start and pokes are attempts of one try, whose log is theirs
	// together: it is printed once, under the try's last attempt.
	lastOfTry := map[int]int{}
	for i, at := range attempts {
		lastOfTry[at.Try] = i
	}
	last, shown := 0, false
	for i, at := range attempts {
		last = max(last, at.Try)
		if *try > 0 && at.Try != *try {
			continue
		}
		shown = true
		fmt.Fprintf(a.Stdout, "=== try %d · attempt %s · %s · worker %s\n", at.Try, at.AttemptID, at.State, at.Worker)
		if lastOfTry[at.Try] != i {
			continue
		}
		d, err := o.Attempt(ctx, dagID, runID, pos[1], at.Try)
		if err != nil {
			return err
		}
		if len(d.Rendered) > 0 {
			fmt.Fprintf(a.Stdout, "arguments (secrets masked): %s\n", readableJSON(string(d.Rendered)))
		}
		if err := printLog(ctx, a, o, dagID, runID, pos[1], at.Try, *raw, loc); err != nil {
			return err
		}
		if d.Error != "" {
			fmt.Fprintf(a.Stdout, "error: %s\n", d.Error)
		}
	}
	if !shown {
		return console.Errorf(console.CodeNotFound, "task %s of %s/%s has no try %d (its last is %d)", pos[1], dagID, runID, *try, last)
	}
	return nil
}

// printLog prints an attempt's log, chunk by chunk; times are in loc (the DAG's timezone),
// its zone named.
func printLog(ctx context.Context, a *App, o console.Operations, dagID, runID, taskID string, try int, raw bool, loc *time.Location) error {
	var after int64
	for {
		l, err := o.Log(ctx, dagID, runID, taskID, try, after)
		if err != nil {
			return err
		}
		switch {
		case l.Expired:
			fmt.Fprintln(a.Stdout, "(log expired or deleted)")
		case l.Unavailable != "":
			fmt.Fprintf(a.Stdout, "(log unavailable: %s)\n", l.Unavailable)
		}
		for _, e := range l.Entries {
			switch {
			case raw:
				b, _ := json.Marshal(e)
				fmt.Fprintln(a.Stdout, string(b))
			case e.Time.IsZero() && e.Severity == "": // a line that is not a JSON entry
				fmt.Fprintln(a.Stdout, e.Message)
			default:
				fmt.Fprintf(a.Stdout, "%s %-7s %s\n", e.Time.In(loc).Format("15:04:05.000 MST"), e.Severity, e.Message)
			}
		}
		if len(l.Entries) == 0 || l.Next == after {
			return nil
		}
		after = l.Next
	}
}

func cmdVarsSet(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 2 {
		return usagef("name a variable and its value")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	if err := o.SetVariable(ctx, args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "set %s\n", args[0])
	return nil
}

func cmdVarsGet(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	vs, err := o.Variables(ctx)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if v.Name == args[0] {
			fmt.Fprintln(a.Stdout, v.Value)
			return nil
		}
	}
	return console.Errorf(console.CodeNotFound, "variable %q is not set (set it with `updraft vars set %s VALUE`)", args[0], args[0])
}

func cmdVarsList(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 0 {
		return usagef("vars list takes no arguments")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	vs, err := o.Variables(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VARIABLE\tVALUE")
	for _, v := range vs {
		fmt.Fprintf(w, "%s\t%s\n", v.Name, shorten(v.Value, 80))
	}
	return w.Flush()
}

func cmdVarsDelete(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	if err := o.DeleteVariable(ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "deleted %s\n", args[0])
	return nil
}

func cmdUsersGrant(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 2 {
		return usagef("give an email and a role (viewer, operator or admin)")
	}
	email, err := access.NormalizeEmail(args[0])
	if err != nil {
		return usagef("%v", err)
	}
	role, err := access.ParseRole(args[1])
	if err != nil {
		return usagef("%v", err)
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	u, err := o.Grant(ctx, email, role.String())
	if err != nil {
		return err
	}
	switch u.Previous {
	case u.Role:
		fmt.Fprintf(a.Stdout, "%s already holds %s\n", u.Email, u.Role)
	case "", access.None.String():
		fmt.Fprintf(a.Stdout, "granted %s to %s\n", u.Role, u.Email)
	default:
		fmt.Fprintf(a.Stdout, "granted %s to %s (was %s)\n", u.Role, u.Email, u.Previous)
	}
	return nil
}

func cmdUsersRevoke(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 1 {
		return usagef("give one email")
	}
	email, err := access.NormalizeEmail(args[0])
	if err != nil {
		return usagef("%v", err)
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	if err := o.Revoke(ctx, email); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "revoked %s's role\n", email)
	return nil
}

func cmdUsersList(ctx context.Context, a *App, open opener, args []string) error {
	if len(args) != 0 {
		return usagef("users list takes no arguments")
	}
	o, err := open(ctx)
	if err != nil {
		return err
	}
	us, err := o.Users(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tROLE\tGRANTED BY\tGRANTED AT")
	for _, u := range us {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Email, u.Role, u.GrantedBy, u.GrantedAt.UTC().Format(time.RFC3339))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.Stderr, "(a DAG's owner is also an operator of that DAG, without a grant)")
	return nil
}
