package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// parseOptions are the DAG parser's options: the real cron check and the built-in task
// types' argument checks.
func parseOptions() dag.Options {
	cfg, _ := repoConfig()
	return dag.Options{
		ValidateCron: func(expr string) error { _, err := schedule.ParseCron(expr); return err },
		CheckArgs:    tasktypes.Builtins().CheckArgs,
		OwnerDomains: cfg.OwnerDomains,
	}
}

// repoConfig reads the repository's updraft.yaml (owner_domain), found from the working
// directory up; its problems are reported by dags validate.
func repoConfig() (dag.RepoConfig, dag.Problems) {
	wd, err := os.Getwd()
	if err != nil {
		return dag.RepoConfig{}, nil
	}
	return dag.LoadRepoConfig(wd)
}

// loadDAGs loads files and prints each bad file's problems.
func (a *App) loadDAGs(paths []string) (*dag.LoadResult, error) {
	res, err := dag.LoadFiles(paths, parseOptionsIn(bundleRoot(paths)))
	if err != nil {
		return nil, err
	}
	files := make([]string, 0, len(res.Errors))
	for f := range res.Errors {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		for _, p := range res.Errors[f] {
			fmt.Fprintln(a.Stderr, p.Error())
		}
	}
	return res, nil
}

func cmdValidate(_ context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("name at least one DAG file or folder")
	}
	res, err := a.loadDAGs(paths)
	if err != nil {
		return err
	}
	n, files := 0, len(res.Errors)
	for _, ps := range res.Errors {
		n += len(ps)
	}
	if _, probs := repoConfig(); len(probs) > 0 {
		fmt.Fprintln(a.Stderr, probs.Error())
		n, files = n+len(probs), files+1
	}
	if note := pythonNote(res.DAGs); note != "" {
		fmt.Fprintln(a.Stderr, note)
	}
	if n > 0 {
		fmt.Fprintf(a.Stderr, "%d problem(s) in %d file(s); %d DAG(s) valid\n", n, files, len(res.DAGs))
		return silentError{1}
	}
	fmt.Fprintf(a.Stdout, "ok: %d DAG(s) valid\n", len(res.DAGs))
	return nil
}

// pythonNote says, when DAGs have python tasks and no interpreter is there to parse their
// modules, that the functions those tasks name were not checked (the files were).
func pythonNote(dags []*dag.DAG) string {
	py := validationPython()
	if _, err := exec.LookPath(py); err == nil {
		return ""
	}
	for _, d := range dags {
		for _, t := range d.Tasks {
			if t.Type == "python" {
				return fmt.Sprintf("note: %s is not on this machine: the functions python tasks name were not checked, only their files (install Python 3, or set %s to an interpreter)", py, taskrun.EnvPython)
			}
		}
	}
	return ""
}

func cmdDeploy(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	prune := fs.Bool("prune", false, "deactivate deployed DAGs whose files are gone")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("name at least one DAG file or folder")
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := a.loadDAGs(paths)
	if err != nil {
		return err
	}
	if root := bundleRoot(paths); root != "" && len(res.DAGs) > 0 {
		if a.Getenv(bundle.EnvBucket) == "" {
			if hasCode(root) {
				fmt.Fprintf(a.Stderr, "note: %s is not set: the DAGs are deployed without their folder (python tasks, sql_file and include need it)\n", bundle.EnvBucket)
			}
		} else if err := a.uploadBundle(ctx, root, res.DAGs); err != nil {
			return err
		}
	}
	if err := deployAll(ctx, a, eng, res, *prune); err != nil {
		return err
	}
	if err := recordImportErrors(ctx, eng.Store(), res.Errors, a.actor().Who, time.Now()); err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(a.Stderr, "%d file(s) not deployed: fix the problems above\n", len(res.Errors))
		return silentError{1}
	}
	return nil
}

// deployAll deploys every loaded DAG, printing what each deploy did.
func deployAll(ctx context.Context, a *App, eng *engine.Engine, res *dag.LoadResult, prune bool) error {
	keep := map[string]bool{}
	for _, d := range res.DAGs {
		src, err := os.ReadFile(d.Source.File)
		if err != nil {
			return err
		}
		out, err := eng.Deploy(ctx, d, src)
		if err != nil {
			return fmt.Errorf("deploy %s: %w", d.ID, err)
		}
		keep[d.ID] = true
		fmt.Fprintf(a.Stdout, "%-9s %s (%s)\n", out, d.ID, d.Source.File)
	}
	if !prune {
		return nil
	}
	if len(res.Errors) > 0 {
		return errors.New("not pruning: some files failed to load, and their DAGs would look gone")
	}
	pruned, err := eng.Prune(ctx, keep)
	for _, id := range pruned {
		fmt.Fprintf(a.Stdout, "pruned    %s (file gone; history kept)\n", id)
	}
	return err
}

func cmdDagsList(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("dags list", flag.ContinueOnError)
	all := fs.Bool("all", false, "also list the test__ DAGs that updraft test made")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("dags list takes no arguments")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	dags, err := st.ListDAGs(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DAG\tSCHEDULE\tTIMEZONE\tOWNER\tSTATE\tNEXT RUN DUE")
	tests := 0
	for _, v := range dags {
		d := v.Rec
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
		next := "-"
		if d.NextDueAt != nil {
			next = inZone(*d.NextDueAt, d.Timezone)
		}
		sched := d.Schedule
		if sched == "" {
			sched = "(manual)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.DagID, sched, d.Timezone, d.Owner, state, next)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if tests > 0 {
		fmt.Fprintf(a.Stdout, "(%d test DAG(s) from updraft test not shown: --all lists them)\n", tests)
	}
	if !a.printImportErrors() {
		a.printStoredImportErrors(ctx, st)
	}
	return nil
}

// testDAGPrefix starts the id of a DAG that `updraft test` deployed into a running dev.
const testDAGPrefix = "test__"

// printImportErrors lists the files of the running dev's DAG folder that fail to load, each
// with its first problem: a DAG that does not load is not in the store, so the list alone
// would leave it out. It returns false away from `updraft dev` (the caller then shows the
// import errors the last deploy recorded).
func (a *App) printImportErrors() bool {
	st := a.readDevState()
	if st == nil || st.DagDir == "" || a.Getenv("GOOGLE_CLOUD_PROJECT") != "" {
		return false
	}
	res, err := dag.LoadDir(st.DagDir, parseOptions())
	if err != nil {
		fmt.Fprintf(a.Stdout, "\nthe DAG folder %s could not be read: %v\n", st.DagDir, err)
		return true
	}
	if len(res.Errors) == 0 {
		return true
	}
	files := make([]string, 0, len(res.Errors))
	for f := range res.Errors {
		files = append(files, f)
	}
	sort.Strings(files)
	fmt.Fprintf(a.Stdout, "\n%d DAG file(s) in %s failed to load:\n", len(files), st.DagDir)
	for _, f := range files {
		ps := res.Errors[f]
		more := ""
		if len(ps) > 1 {
			more = fmt.Sprintf(" (and %d more: %s dags validate %s)", len(ps)-1, a.name(), f)
		}
		fmt.Fprintf(a.Stdout, "  %s%s\n", ps[0].Error(), more)
	}
	return true
}

// zoneName is how tables name the zone of a DAG's times: its timezone, UTC when unset.
func zoneName(tz string) string {
	if _, err := time.LoadLocation(tz); err != nil || tz == "" {
		return "UTC"
	}
	return tz
}

func inZone(t time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format(time.RFC3339)
}

func cmdScheduleNext(_ context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("schedule next", flag.ContinueOnError)
	n := fs.Int("n", 5, "how many runs")
	after := fs.String("after", "", "an RFC 3339 instant (default now)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG file")
	}
	if *n < 1 {
		return usagef("-n must be at least 1, got %d", *n)
	}
	t := time.Now()
	if *after != "" {
		if t, err = time.Parse(time.RFC3339, *after); err != nil {
			return usagef("--after %q is not RFC 3339 (e.g. 2025-01-01T00:00:00+09:00)", *after)
		}
	}
	d, err := parseOne(pos[0])
	if err != nil {
		return err
	}
	if d.Schedule == "" {
		return fmt.Errorf("%s: DAG %s has no schedule (it runs only when triggered)", pos[0], d.ID)
	}
	start := t
	if d.Start != nil {
		start = *d.Start
	}
	tt, err := engine.Timetable(d, start)
	if err != nil {
		return err
	}
	loc := d.Location()
	for _, iv := range tt.DueAfter(t, *n) {
		fmt.Fprintf(a.Stdout, "%s  %s  %s\n", iv.Start.In(loc).Format(time.RFC3339), iv.Start.In(loc).Format(time.RFC3339), iv.End.In(loc).Format(time.RFC3339))
	}
	return nil
}

// parseOne parses one DAG file, returning its problems as the error.
func parseOne(path string) (*dag.DAG, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return dag.Parse(path, data, parseOptionsIn(bundle.FindRoot(path)))
}

// absPath is p made absolute (p itself if that fails), for state other processes read.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
