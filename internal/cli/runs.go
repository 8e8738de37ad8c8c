package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

func cmdTrigger(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	confArg := fs.String("conf", "", "JSON object overriding the DAG's params")
	at := fs.String("logical-date", "", "RFC 3339 logical date (default now)")
	replace := fs.Bool("replace", false, "replace the finished run that already has this logical date")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	var conf map[string]any
	if *confArg != "" {
		if err := json.Unmarshal([]byte(*confArg), &conf); err != nil {
			return usagef("--conf must be a JSON object, e.g. '{\"region\": \"asia\"}': %v", err)
		}
	}
	T := time.Now()
	if *at != "" {
		if T, err = time.Parse(time.RFC3339, *at); err != nil {
			return usagef("--logical-date %q is not RFC 3339 (e.g. 2025-01-01T00:00:00+09:00)", *at)
		}
	}
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	// Create the run and return: the advancer starts it and does its cascade (the tick, if
	// its start event is lost), so nothing depends on this process living on.
	r, err := eng.SubmitTrigger(ctx, pos[0], conf, T)
	var exists *engine.RunExistsError
	if errors.As(err, &exists) {
		if !*replace {
			return fmt.Errorf("%w\n  see it: %s runs show %s/%s · replace it: add --replace", err, a.name(), exists.Existing.DagID, exists.Existing.RunID)
		}
		if _, err := eng.DeleteRunAt(ctx, pos[0], exists.Existing.LogicalDate, false); err != nil {
			return err
		}
		r, err = eng.SubmitTrigger(ctx, pos[0], conf, T)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "triggered %s/%s\n", r.DagID, r.RunID)
	return nil
}

func cmdRunsList(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("runs list", flag.ContinueOnError)
	n := fs.Int("n", 25, "how many runs, newest first")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := st.GetDAG(ctx, pos[0])
	if errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("no DAG %q is deployed (see `updraft dags list`)", pos[0])
	}
	if err != nil {
		return err
	}
	runs, err := st.ListRuns(ctx, pos[0], *n)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	tz := zoneName(d.Rec.Timezone)
	fmt.Fprintf(w, "RUN ID\tSTATE\tLOGICAL DATE (%s)\tDATA INTERVAL END (%s)\tDURATION\n", tz, tz)
	for _, v := range runs {
		r := v.Rec
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.RunID, r.State, inZone(r.LogicalDate, d.Rec.Timezone),
			inZone(r.IntervalEnd, d.Rec.Timezone), duration(r.StartedAt, r.EndedAt))
	}
	return w.Flush()
}

func duration(start, end *time.Time) string {
	if start == nil {
		return "-"
	}
	e := time.Now()
	if end != nil {
		e = *end
	}
	d := e.Sub(*start).Round(time.Millisecond)
	if d < 0 {
		return "-" // an end left from an earlier try, or clocks apart: no duration to show
	}
	if end == nil {
		return d.String() + "…"
	}
	return d.String()
}

// endedIfFinished is a task's end time while it has finished; a running try (a retry, a
// clear) still carries the end of the try before it, which is not its own.
func endedIfFinished(st scheduler.TaskState, end *time.Time) *time.Time {
	if !st.Finished() {
		return nil
	}
	return end
}

// findRun resolves DAG/RUN_ID, or a bare RUN_ID when it is unique.
func findRun(ctx context.Context, st *fsstore.Store, ref string) (*fsstore.Versioned[scheduler.Run], error) {
	if dagID, runID, ok := scheduler.SplitRunRef(ref); ok {
		v, err := st.GetRun(ctx, dagID, runID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return nil, fmt.Errorf("no run %s of DAG %s (see `updraft runs list %s`)", runID, dagID, dagID)
		}
		return v, err
	}
	runs, err := st.FindRuns(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch len(runs) {
	case 0:
		return nil, fmt.Errorf("no run %q (name it as DAG/RUN_ID; see `updraft runs list DAG`)", ref)
	case 1:
		return &runs[0], nil
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Rec.DagID+"/"+r.Rec.RunID)
	}
	return nil, fmt.Errorf("run id %q is in several DAGs; name one of: %s", ref, strings.Join(names, ", "))
}

func cmdRunsShow(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("runs show", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one run: DAG/RUN_ID, or a RUN_ID unique across DAGs")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := findRun(ctx, st, pos[0])
	if err != nil {
		return err
	}
	r := v.Rec
	d, err := st.GetDAG(ctx, r.DagID)
	tz := "UTC"
	if err == nil {
		tz = d.Rec.Timezone
	}
	fmt.Fprintf(a.Stdout, "run %s/%s: %s\n  logical date %s, data interval [%s, %s) (%s), %s, version %.12s\n",
		r.DagID, r.RunID, r.State, inZone(r.LogicalDate, tz), inZone(r.IntervalStart, tz), inZone(r.IntervalEnd, tz),
		zoneName(tz), duration(r.StartedAt, r.EndedAt), r.Version)
	if ver, err := st.GetVersion(ctx, r.DagID, r.Version); err == nil && ver.Bundle != "" {
		fmt.Fprintf(a.Stdout, "  bundle %s\n", ver.Bundle)
	}
	tis, err := st.ListTaskInstances(ctx, r.DagID, r.RunID)
	if err != nil {
		return err
	}
	sortInstances(ctx, st, r, tis)
	now := time.Now()
	var rendered []string
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tSTATE\tTRY\tDURATION\tNOTE")
	for _, tv := range tis {
		ti := tv.Rec
		note := firstLine(ti.Error)
		if ti.AttemptID != "" {
			if at, err := st.GetAttempt(ctx, ti.AttemptID); err == nil {
				if ti.State == scheduler.TaskRunning && at.Rec.LeaseExpiresAt.Before(now) {
					note = fmt.Sprintf("lease expired %s ago (worker %s lost?)", now.Sub(at.Rec.LeaseExpiresAt).Round(time.Second), at.Rec.Worker)
				}
				if at.Rec.Rendered != "" {
					rendered = append(rendered, fmt.Sprintf("  %s: %s", ti.TaskID, shorten(readableJSON(at.Rec.Rendered), 300)))
				}
			}
		}
		if ti.MapCount != nil && note == "" {
			note = fmt.Sprintf("for_each: %d instances", *ti.MapCount)
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", ti.TaskID, ti.State, ti.TryNumber, ti.MaxTries, duration(ti.StartedAt, endedIfFinished(ti.State, ti.EndedAt)), note)
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

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func cmdLogs(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	try := fs.Int("try", 0, "which try (default: every try)")
	raw := fs.Bool("json", false, "print the JSON log entries as stored")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("name a run and a task id")
	}
	st, _, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := findRun(ctx, st, pos[0])
	if err != nil {
		return err
	}
	if _, err := st.GetTaskInstance(ctx, v.Rec.DagID, v.Rec.RunID, pos[1]); errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("run %s/%s has no task %q", v.Rec.DagID, v.Rec.RunID, pos[1])
	}
	attempts, err := st.ListAttempts(ctx, v.Rec.DagID, v.Rec.RunID, pos[1])
	if err != nil {
		return err
	}
	loc := time.UTC // log times in the DAG's timezone, as the UI shows them
	if d, err := st.GetDAG(ctx, v.Rec.DagID); err == nil {
		if l, err := time.LoadLocation(d.Rec.Timezone); err == nil {
			loc = l
		}
	}
	if len(attempts) == 0 {
		fmt.Fprintf(a.Stdout, "task %s has not started yet in %s/%s\n", pos[1], v.Rec.DagID, v.Rec.RunID)
		return nil
	}
	for _, at := range attempts {
		at := at.Rec
		if *try > 0 && at.TryNumber != *try {
			continue
		}
		fmt.Fprintf(a.Stdout, "=== try %d · attempt %s · %s · worker %s\n", at.TryNumber, at.ID, at.State, at.Worker)
		if at.Rendered != "" {
			fmt.Fprintf(a.Stdout, "arguments (secrets masked): %s\n", readableJSON(at.Rendered))
		}
		if err := printLog(a, at.LogRef, *raw, loc); err != nil {
			fmt.Fprintf(a.Stdout, "(log unavailable: %v)\n", err)
		}
		if at.Error != "" {
			fmt.Fprintf(a.Stdout, "error: %s\n", at.Error)
		}
	}
	return nil
}

// printLog prints an attempt's log; times are in loc (the DAG's timezone), its zone named.
func printLog(a *App, ref string, raw bool, loc *time.Location) error {
	path, ok := strings.CutPrefix(ref, "file:")
	if !ok {
		return fmt.Errorf("no local log kept (log ref %q)", ref)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("log expired or deleted")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// Lines of any length: the worker keeps a line whole up to half the log's cap.
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			text := strings.TrimRight(string(b), "\n")
			var e tasks.Entry
			if raw || json.Unmarshal(b, &e) != nil {
				fmt.Fprintln(a.Stdout, text)
			} else {
				fmt.Fprintf(a.Stdout, "%s %-7s %s\n", e.Time.In(loc).Format("15:04:05.000 MST"), e.Severity, e.Message)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func cmdTick(ctx context.Context, a *App, args []string) error {
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	rep, err := eng.Tick(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.Stdout, jsonText(rep, true))
	return nil
}

// sortInstances orders a run's task instances as its DAG file lists the tasks, each
// for_each task followed by its instances in index order (id[2] before id[10]).
func sortInstances(ctx context.Context, st *fsstore.Store, r scheduler.Run, tis []fsstore.Versioned[scheduler.TaskInstance]) {
	pos := map[string]int{}
	if v, err := st.GetVersion(ctx, r.DagID, r.Version); err == nil {
		var d dag.DAG
		if json.Unmarshal([]byte(v.SpecJSON), &d) == nil {
			for i, t := range d.Tasks {
				pos[t.ID] = i
			}
		}
	}
	sort.SliceStable(tis, func(i, j int) bool { return scheduler.InstanceLess(pos, tis[i].Rec.TaskID, tis[j].Rec.TaskID) })
}
