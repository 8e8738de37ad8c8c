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
