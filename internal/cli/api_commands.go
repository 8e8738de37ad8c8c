package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/internal/console"
)

// apiCommand runs one command through the REST API.
type apiCommand func(ctx context.Context, a *App, c *apiClient, args []string) error

// apiCommands are the commands that work over --api; the others talk to Firestore, Pub/Sub
// or local files directly and say so.
func apiCommands() map[string]apiCommand {
	return map[string]apiCommand{
		"dags list":   apiDagsList,
		"dags deploy": apiDagsDeploy,
		"dags pause": func(ctx context.Context, a *App, c *apiClient, args []string) error {
			return apiPause(ctx, a, c, args, true)
		},
		"dags unpause": func(ctx context.Context, a *App, c *apiClient, args []string) error {
			return apiPause(ctx, a, c, args, false)
		},
		"trigger":         apiTrigger,
		"runs list":       apiRunsList,
		"runs show":       apiRunsShow,
		"runs clear":      apiRunsClear,
		"tasks clear":     apiTasksClear,
		"tasks mark":      apiTasksMark,
		"backfill":        apiBackfill,
		"backfill status": apiBackfillStatus,
		"backfill cancel": apiBackfillCancel,
		"logs":            apiLogs,
		"vars set":        apiVarsSet,
		"vars get":        apiVarsGet,
		"vars list":       apiVarsList,
		"vars delete":     apiVarsDelete,
		"users grant":     apiUsersGrant,
		"users revoke":    apiUsersRevoke,
		"users list":      apiUsersList,
	}
}

// runOverAPI runs command name through the API at base.
func (a *App) runOverAPI(ctx context.Context, base, name string, args []string) error {
	cmd, ok := apiCommands()[name]
	if !ok {
		return fmt.Errorf("`updraft %s` is %v: it works on the local stack or talks to Google Cloud directly; "+
			"run it without --api (and without UPDRAFT_API)", name, errNotOverAPI)
	}
	c, err := a.newAPIClient(ctx, base)
	if err != nil {
		return err
	}
	return cmd(ctx, a, c, args)
}

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

func dry(b bool) string {
	if b {
		return "?dry_run=true"
	}
	return ""
}

func apiDagsList(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("dags list", flag.ContinueOnError)
	search := fs.String("search", "", "only DAG ids starting with this")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DAG\tSCHEDULE\tTIMEZONE\tOWNER\tSTATE\tNEXT RUN DUE\tLATEST RUNS")
	tok := ""
	var importErrors []console.ImportError
	for {
		var p console.DAGPage
		q := url.Values{"limit": {"500"}, "search": {*search}, "page_token": {tok}}
		if err := c.call(ctx, "GET", "/dags?"+q.Encode(), nil, &p); err != nil {
			return err
		}
		if tok == "" {
			importErrors = p.ImportErrors
		}
		for _, d := range p.DAGs {
			state := "active"
			switch {
			case !d.Active:
				state = "removed"
			case d.Paused:
				state = "paused"
			}
			next, sched := "-", d.Schedule
			if d.NextRunAt != nil {
				next = d.NextRunAt.Format(time.RFC3339)
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
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, ie := range importErrors {
		fmt.Fprintf(a.Stdout, "import error: %s:%d: %s\n", ie.File, ie.Line, ie.Message)
	}
	return nil
}

func apiPause(ctx context.Context, a *App, c *apiClient, args []string, paused bool) error {
	if len(args) != 1 {
		return usagef("name one DAG id")
	}
	var af console.Affected
	if err := c.call(ctx, "PATCH", "/dags/"+esc(args[0]), map[string]bool{"paused": paused}, &af); err != nil {
		return err
	}
	printAffected(a, af)
	return nil
}

func apiTrigger(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("trigger", flag.ContinueOnError)
	confArg := fs.String("conf", "", "JSON object overriding the DAG's params")
	at := fs.String("logical-date", "", "RFC 3339 logical date (default now)")
	dryRun := fs.Bool("dry-run", false, "show the run it would start, start nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	body := map[string]any{}
	if *confArg != "" {
		if !json.Valid([]byte(*confArg)) {
			return usagef("--conf must be a JSON object, e.g. '{\"region\": \"asia\"}'")
		}
		body["conf"] = json.RawMessage(*confArg)
	}
	if *at != "" {
		T, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usagef("--logical-date %q is not RFC 3339 (e.g. 2025-01-01T00:00:00+09:00)", *at)
		}
		body["logical_date"] = T
	}
	var res console.TriggerResult
	if err := c.call(ctx, "POST", "/dags/"+esc(pos[0])+"/runs"+dry(*dryRun), body, &res); err != nil {
		return err
	}
	if !res.DryRun && res.Run != nil {
		fmt.Fprintf(a.Stdout, "triggered %s/%s\n", pos[0], res.Run.RunID)
		for _, w := range res.Warnings {
			fmt.Fprintf(a.Stdout, "note: %s\n", w)
		}
		return nil
	}
	printAffected(a, res.Affected)
	return nil
}

func apiRunsList(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("runs list", flag.ContinueOnError)
	n := fs.Int("n", 25, "how many runs, newest first")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one DAG id")
	}
	var runs []console.RunBrief
	tok := ""
	for len(runs) < *n {
		var p console.RunPage
		q := url.Values{"limit": {strconv.Itoa(min(*n-len(runs), console.MaxLimit))}, "page_token": {tok}}
		if err := c.call(ctx, "GET", "/dags/"+esc(pos[0])+"/runs?"+q.Encode(), nil, &p); err != nil {
			return err
		}
		runs = append(runs, p.Runs...)
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	tz := apiDAGZone(ctx, c, pos[0])
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "RUN ID\tSTATE\tTYPE\tLOGICAL DATE (%s)\tDURATION\n", tz)
	for _, r := range runs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.RunID, r.State, r.RunType, inZone(r.LogicalDate, tz), duration(r.StartedAt, r.EndedAt))
	}
	return w.Flush()
}

func apiRunsShow(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one run: DAG/RUN_ID")
	}
	dagID, runID, err := apiRunRef(args[0])
	if err != nil {
		return err
	}
	var r console.RunDetail
	if err := c.call(ctx, "GET", "/dags/"+esc(dagID)+"/runs/"+esc(runID), nil, &r); err != nil {
		return err
	}
	tz := apiDAGZone(ctx, c, dagID)
	fmt.Fprintf(a.Stdout, "run %s/%s: %s\n  logical date %s, data interval [%s, %s) (%s), %s, version %.12s\n",
		dagID, r.RunID, r.State, inZone(r.LogicalDate, tz), inZone(r.DataIntervalStart, tz),
		inZone(r.DataIntervalEnd, tz), tz, duration(r.StartedAt, r.EndedAt), r.Version)
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TASK\tSTATE\tTRY\tDURATION\tNOTE")
	for _, t := range r.Tasks {
		note := firstLine(t.Error)
		if t.MapCount != nil && note == "" {
			note = fmt.Sprintf("for_each: %d instances", *t.MapCount)
		}
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%s\t%s\n", t.TaskID, t.State, t.Try, t.MaxTries, duration(t.StartedAt, t.EndedAt), note)
	}
	return w.Flush()
}

func apiRunsClear(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("runs clear", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would clear, clear nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one run: DAG/RUN_ID")
	}
	dagID, runID, err := apiRunRef(pos[0])
	if err != nil {
		return err
	}
	var af console.Affected
	if err := c.call(ctx, "POST", "/dags/"+esc(dagID)+"/runs/"+esc(runID)+"/clear"+dry(*dryRun), nil, &af); err != nil {
		return err
	}
	printAffected(a, af)
	return nil
}

func apiTasksClear(ctx context.Context, a *App, c *apiClient, args []string) error {
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
	dagID, runID, err := apiRunRef(pos[0])
	if err != nil {
		return err
	}
	body := map[string]any{"downstream": *down, "upstream": *up, "also": pos[2:]}
	var af console.Affected
	path := "/dags/" + esc(dagID) + "/runs/" + esc(runID) + "/tasks/" + esc(pos[1]) + "/clear" + dry(*dryRun)
	if err := c.call(ctx, "POST", path, body, &af); err != nil {
		return err
	}
	printAffected(a, af)
	return nil
}

func apiTasksMark(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("tasks mark", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "show what it would do, change nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usagef("name a run (DAG/RUN_ID), a task id and success or failed")
	}
	dagID, runID, err := apiRunRef(pos[0])
	if err != nil {
		return err
	}
	var af console.Affected
	path := "/dags/" + esc(dagID) + "/runs/" + esc(runID) + "/tasks/" + esc(pos[1]) + "/mark" + dry(*dryRun)
	if err := c.call(ctx, "POST", path, map[string]string{"state": pos[2]}, &af); err != nil {
		return err
	}
	printAffected(a, af)
	return nil
}

func apiBackfill(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("backfill", flag.ContinueOnError)
	from := fs.String("from", "", "first logical date, YYYY-MM-DD in the DAG's timezone")
	to := fs.String("to", "", "last logical date, YYYY-MM-DD")
	reprocess := fs.String("reprocess", "none", "none, failed or completed")
	maxActive := fs.Int("max-active-runs", 0, "runs at once (default: the DAG's max_active_runs)")
	dryRun := fs.Bool("dry-run", false, "list the intervals it would run, start nothing")
	fs.Bool("no-wait", true, "accepted for compatibility: over --api the command always returns at once")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *from == "" || *to == "" {
		return usagef("name one DAG id, --from and --to")
	}
	body := map[string]any{"from": *from, "to": *to, "reprocess": *reprocess, "max_active_runs": *maxActive}
	var res console.BackfillResult
	if err := c.call(ctx, "POST", "/dags/"+esc(pos[0])+"/backfills"+dry(*dryRun), body, &res); err != nil {
		return err
	}
	printAffected(a, res.Affected)
	if res.Backfill != nil {
		fmt.Fprintf(a.Stdout, "backfill %s is running server-side; follow it with `updraft --api URL backfill status %s`\n", res.Backfill.BackfillID, pos[0])
	}
	return nil
}

func apiBackfillStatus(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one DAG id")
	}
	var res struct {
		Backfills []console.BackfillView `json:"backfills"`
	}
	if err := c.call(ctx, "GET", "/dags/"+esc(args[0])+"/backfills", nil, &res); err != nil {
		return err
	}
	if len(res.Backfills) == 0 {
		fmt.Fprintf(a.Stdout, "no backfills of %s\n", args[0])
		return nil
	}
	tz := apiDAGZone(ctx, c, args[0])
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "BACKFILL\tSTATE\tTOTAL\tCREATED\tRERUN\tSKIPPED\tREPROCESS\tSTARTED (%s)\n", tz)
	for _, b := range res.Backfills {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", b.BackfillID, b.State, b.Total, b.Created, b.Rerun, b.Skipped, b.Reprocess, inZone(b.CreatedAt, tz))
	}
	return w.Flush()
}

func apiBackfillCancel(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one backfill id")
	}
	var af console.Affected
	if err := c.call(ctx, "DELETE", "/backfills/"+esc(args[0]), nil, &af); err != nil {
		return err
	}
	printAffected(a, af)
	return nil
}

func apiLogs(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	try := fs.Int("try", 0, "which try (default: every try)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("name a run (DAG/RUN_ID) and a task id")
	}
	dagID, runID, err := apiRunRef(pos[0])
	if err != nil {
		return err
	}
	base := "/dags/" + esc(dagID) + "/runs/" + esc(runID) + "/tasks/" + esc(pos[1]) + "/attempts"
	var res struct {
		Attempts []console.AttemptView `json:"attempts"`
	}
	if err := c.call(ctx, "GET", base, nil, &res); err != nil {
		return err
	}
	if len(res.Attempts) == 0 {
		fmt.Fprintf(a.Stdout, "task %s has not started yet in %s/%s\n", pos[1], dagID, runID)
		return nil
	}
	for _, at := range res.Attempts {
		if *try > 0 && at.Try != *try {
			continue
		}
		var d console.AttemptDetail
		if err := c.call(ctx, "GET", fmt.Sprintf("%s/%d", base, at.Try), nil, &d); err != nil {
			return err
		}
		fmt.Fprintf(a.Stdout, "=== try %d · attempt %s · %s · worker %s\n", at.Try, at.AttemptID, at.State, at.Worker)
		if len(d.Rendered) > 0 {
			fmt.Fprintf(a.Stdout, "arguments (secrets masked): %s\n", readableJSON(d.Rendered))
		}
		var after int64
		for {
			var l console.LogChunk
			if err := c.call(ctx, "GET", fmt.Sprintf("%s/%d/log?after=%d", base, at.Try, after), nil, &l); err != nil {
				return err
			}
			switch {
			case l.Expired:
				fmt.Fprintln(a.Stdout, "(log expired)")
			case l.Unavailable != "":
				fmt.Fprintf(a.Stdout, "(log unavailable: %s)\n", l.Unavailable)
			}
			for _, e := range l.Entries {
				fmt.Fprintf(a.Stdout, "%s %-7s %s\n", e.Time.Local().Format("15:04:05.000 MST"), e.Severity, e.Message)
			}
			if len(l.Entries) == 0 || l.Next == after {
				break
			}
			after = l.Next
		}
		if d.Error != "" {
			fmt.Fprintf(a.Stdout, "error: %s\n", d.Error)
		}
	}
	return nil
}

func apiVarsSet(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 2 {
		return usagef("name a variable and its value")
	}
	if err := c.call(ctx, "PUT", "/variables/"+esc(args[0]), map[string]string{"value": args[1]}, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "set %s\n", args[0])
	return nil
}

func apiVarsList(ctx context.Context, a *App, c *apiClient, args []string) error {
	var res struct {
		Variables []struct{ Name, Value string } `json:"variables"`
	}
	if err := c.call(ctx, "GET", "/variables", nil, &res); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVALUE")
	for _, v := range res.Variables {
		fmt.Fprintf(w, "%s\t%s\n", v.Name, shorten(v.Value, 80))
	}
	return w.Flush()
}

func apiVarsGet(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	var res struct {
		Variables []struct{ Name, Value string } `json:"variables"`
	}
	if err := c.call(ctx, "GET", "/variables", nil, &res); err != nil {
		return err
	}
	for _, v := range res.Variables {
		if v.Name == args[0] {
			fmt.Fprintln(a.Stdout, v.Value)
			return nil
		}
	}
	return fmt.Errorf("no variable %q is set (see `updraft vars list`)", args[0])
}

func apiVarsDelete(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one variable")
	}
	if err := c.call(ctx, "DELETE", "/variables/"+esc(args[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "deleted %s\n", args[0])
	return nil
}

func apiUsersGrant(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 2 {
		return usagef("name an email and a role (viewer, operator or admin)")
	}
	var u console.UserView
	if err := c.call(ctx, "PUT", "/users/"+esc(args[0]), map[string]string{"role": args[1]}, &u); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "%s is now %s\n", u.Email, u.Role)
	return nil
}

func apiUsersRevoke(ctx context.Context, a *App, c *apiClient, args []string) error {
	if len(args) != 1 {
		return usagef("name one email")
	}
	if err := c.call(ctx, "DELETE", "/users/"+esc(args[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "revoked %s's role\n", args[0])
	return nil
}

func apiUsersList(ctx context.Context, a *App, c *apiClient, args []string) error {
	var res struct {
		Users []console.UserView `json:"users"`
	}
	if err := c.call(ctx, "GET", "/users", nil, &res); err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EMAIL\tROLE\tGRANTED BY\tGRANTED AT")
	for _, u := range res.Users {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Email, u.Role, u.GrantedBy, u.GrantedAt.Local().Format(time.DateTime+" MST"))
	}
	return w.Flush()
}

// apiDAGZone is the timezone a DAG's tables are shown in: the DAG's, or UTC when the DAG
// cannot be read (the table then says UTC, and its times are in UTC).
func apiDAGZone(ctx context.Context, c *apiClient, dagID string) string {
	var d console.DAGDetail
	if err := c.call(ctx, "GET", "/dags/"+esc(dagID), nil, &d); err != nil {
		return "UTC"
	}
	return zoneName(d.Timezone)
}
