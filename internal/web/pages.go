package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/console"
)

// canOperate is whether the caller may act on a DAG: an operator or admin, or its owner.
// It only decides what the page shows; the console decides what is allowed.
func canOperate(me console.Me, owner string) bool {
	return me.Role == "operator" || me.Role == "admin" || (me.Email != "" && strings.EqualFold(me.Email, owner))
}

func jsonAttr(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// ---- DAG list: Me + ListDAGs.

type dagRow struct {
	console.DAGSummary
	// Runs are the recent runs oldest first, so the newest is on the right like the grid.
	Runs       []console.RunBrief
	CanOperate bool
	PauseAPI   string
	PauseBody  string
}

type dagsPage struct {
	Query, Status string
	// All shows the test__ DAGs `updraft test` deployed (?all=1); Hidden counts those left out.
	All    bool
	Hidden int
	List   console.DAGPage
	Rows   []dagRow
	// ShowAll is this page's address with all=1.
	ShowAll string
}

// testDAGPrefix starts the id of a DAG `updraft test` deployed into a running dev: the list
// leaves them out unless asked (?all=1, or a search for them), as `updraft dags list` does.
const testDAGPrefix = "test__"

func (ui *UI) dags(w http.ResponseWriter, r *http.Request) {
	d, err := ui.base(r, "DAGs", "dags")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	p := dagsPage{Query: strings.TrimSpace(q.Get("q")), Status: q.Get("status"), All: q.Get("all") == "1"}
	p.All = p.All || strings.HasPrefix(p.Query, testDAGPrefix)
	show := url.Values{"all": {"1"}}
	for _, k := range []string{"q", "status"} {
		if v := q.Get(k); v != "" {
			show.Set(k, v)
		}
	}
	p.ShowAll = "/?" + show.Encode()
	p.List, err = ui.cfg.Console.ListDAGs(r.Context(), ui.caller(r), console.DAGQuery{Search: p.Query, PageToken: q.Get("page")})
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	for _, s := range p.List.DAGs {
		if (p.Status == "paused" && !s.Paused) || (p.Status == "active" && s.Paused) {
			continue
		}
		if !p.All && strings.HasPrefix(s.DagID, testDAGPrefix) {
			p.Hidden++
			continue
		}
		row := dagRow{DAGSummary: s, CanOperate: canOperate(d.Me, s.Owner)}
		row.Runs = slices.Clone(s.RecentRuns)
		slices.Reverse(row.Runs)
		row.PauseAPI, row.PauseBody = pauseAction(s.DagID, !s.Paused)
		p.Rows = append(p.Rows, row)
	}
	d.Page = p
	ui.render(w, r, "dags", d)
}

// ---- DAG page: Me + DAG + Grid (grid and graph tabs) or Backfills (backfill tab).

type gridCell struct {
	console.GridCell
	Href  string
	Title string
}

type gridRow struct {
	Task  console.TaskSummary
	Cells []gridCell
}

type gridView struct {
	Runs []console.GridRun // oldest first
	Rows []gridRow
	Live bool
	// Selected is the run the graph shows.
	Selected string
}

type graphNode struct {
	placedNode
	Label, Type, State, Href, Title string
	SymX, SymY, TextX, TextY        int
}

type graphView struct {
	graphLayout
	Nodes []graphNode
	Runs  []console.GridRun
	Run   *console.GridRun
}

type dagPage struct {
	DAG        *console.DAGDetail
	Tab        string
	CanOperate bool
	Grid       *gridView
	Graph      *graphView
	Backfills  []console.BackfillView
	Source     []string
	// Files are the bundle's files (the code tab), read-only.
	Files []console.BundleFile
	// Actions' endpoints and bodies.
	PauseAPI, PauseBody string
	TriggerAPI          string
	BackfillAPI         string
	ParamsJSON          string
	Today               string
	OlderHref           string
	LiveSrc             string
	Live                bool
}

func (ui *UI) dag(w http.ResponseWriter, r *http.Request) {
	dagID := r.PathValue("dag")
	d, err := ui.base(r, dagID, "dags")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	who := ui.caller(r)
	det, err := ui.cfg.Console.DAG(r.Context(), who, dagID)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	p := dagPage{DAG: det, Tab: q.Get("tab"), CanOperate: canOperate(d.Me, det.Owner)}
	switch p.Tab {
	case "graph", "code", "backfills":
	default:
		p.Tab = "grid"
	}
	d.Title = dagID
	p.PauseAPI, p.PauseBody = pauseAction(dagID, !det.Paused)
	p.TriggerAPI = apiDAG(dagID) + "/runs"
	p.BackfillAPI = apiDAG(dagID) + "/backfills"
	p.ParamsJSON = paramsTemplate(det.Params)
	p.Today = ui.cfg.Now().In(location(det.Timezone)).Format(time.DateOnly)
	self := "/dags/" + url.PathEscape(dagID)
	switch p.Tab {
	case "grid", "graph":
		grid, err := ui.cfg.Console.Grid(r.Context(), who, dagID, console.GridQuery{Runs: 25, Before: q.Get("before")})
		if err != nil {
			ui.fail(w, r, err)
			return
		}
		p.Grid = buildGrid(grid, q.Get("run"))
		p.Live = p.Grid.Live
		if grid.NextBefore != "" {
			p.OlderHref = self + "?tab=" + p.Tab + "&before=" + url.QueryEscape(grid.NextBefore)
		}
		live := url.Values{"tab": {p.Tab}, "live": {"1"}}
		for _, k := range []string{"before", "run"} {
			if v := q.Get(k); v != "" {
				live.Set(k, v)
			}
		}
		p.LiveSrc = self + "?" + live.Encode()
		if p.Tab == "graph" {
			p.Graph = buildGraph(det, grid, p.Grid.Selected)
		}
	case "backfills":
		p.Backfills, err = ui.cfg.Console.Backfills(r.Context(), who, dagID)
		if err != nil {
			ui.fail(w, r, err)
			return
		}
		p.LiveSrc = self + "?tab=backfills&live=1"
		for _, b := range p.Backfills {
			p.Live = p.Live || b.State == "running"
		}
	case "code":
		p.Source = strings.Split(strings.TrimRight(det.Source, "\n"), "\n")
		if p.Files, err = ui.cfg.Console.BundleFiles(r.Context(), who, dagID); err != nil {
			ui.fail(w, r, err)
			return
		}
	}
	d.Page = p
	ui.render(w, r, "dag", d)
}

func buildGrid(g *console.Grid, selected string) *gridView {
	v := &gridView{Runs: slices.Clone(g.Runs)}
	slices.Reverse(v.Runs) // oldest left, newest right
	for _, run := range v.Runs {
		if unfinished(run.State) {
			v.Live = true
		}
	}
	if selected == "" && len(v.Runs) > 0 {
		selected = v.Runs[len(v.Runs)-1].RunID
	}
	v.Selected = selected
	for i, t := range g.Tasks {
		row := gridRow{Task: t}
		for _, run := range v.Runs {
			c := console.GridCell{State: "none"}
			if i < len(run.Cells) {
				c = run.Cells[i]
			}
			href := fmt.Sprintf("/dags/%s/runs/%s/tasks/%s", url.PathEscape(g.DagID), url.PathEscape(run.RunID), url.PathEscape(t.ID))
			if c.Try > 0 {
				href += "?try=" + strconv.Itoa(c.Try)
			}
			title := fmt.Sprintf("%s in %s", t.ID, run.RunID)
			if c.Try > 1 {
				title += fmt.Sprintf(", try %d", c.Try)
			}
			if c.MapCount != nil {
				title += fmt.Sprintf(", %d instances", *c.MapCount)
			}
			row.Cells = append(row.Cells, gridCell{GridCell: c, Href: href, Title: title})
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

func buildGraph(det *console.DAGDetail, g *console.Grid, selected string) *graphView {
	gv := &graphView{Runs: slices.Clone(g.Runs)}
	var run *console.GridRun
	for i := range g.Runs {
		if g.Runs[i].RunID == selected {
			run = &g.Runs[i]
		}
	}
	gv.Run = run
	// Cells are aligned with the grid's tasks; find each task's cell by id.
	cellOf := map[string]console.GridCell{}
	if run != nil {
		for i, t := range g.Tasks {
			if i < len(run.Cells) {
				cellOf[t.ID] = run.Cells[i]
			}
		}
	}
	tasks := make([]graphTask, 0, len(det.Tasks))
	types := map[string]string{}
	for _, t := range det.Tasks {
		tasks = append(tasks, graphTask{ID: t.ID, Needs: t.Upstream})
		types[t.ID] = t.Type
	}
	gv.graphLayout = layoutGraph(tasks)
	for _, n := range gv.graphLayout.Nodes {
		c, ok := cellOf[n.ID]
		state := "none"
		if ok && c.State != "" {
			state = c.State
		}
		gn := graphNode{placedNode: n, Label: shortLabel(n.ID), Type: types[n.ID], State: state,
			SymX: n.X + 12, SymY: n.Y + nodeH/2 + 5, TextX: n.X + 26, TextY: n.Y + nodeH/2 + 4}
		gn.Title = fmt.Sprintf("%s (%s): %s", n.ID, gn.Type, styleOf(state).Label)
		if run != nil {
			gn.Href = fmt.Sprintf("/dags/%s/runs/%s/tasks/%s", url.PathEscape(det.DagID), url.PathEscape(run.RunID), url.PathEscape(n.ID))
		}
		gv.Nodes = append(gv.Nodes, gn)
	}
	return gv
}

// paramsTemplate is the trigger dialog's starting conf: the DAG's params with their
// defaults (a param given as {default: v, ...} starts at v).
func paramsTemplate(params map[string]any) string {
	if len(params) == 0 {
		return "{}"
	}
	out := map[string]any{}
	for k, v := range params {
		if m, ok := v.(map[string]any); ok {
			if def, has := m["default"]; has {
				out[k] = def
				continue
			}
		}
		out[k] = v
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "{}"
	}
	return string(b)
}

// ---- Run page: Me + DAG + Run.

type taskRow struct {
	console.TaskInstanceView
	Href string
}

type runPage struct {
	DAG        *console.DAGDetail
	Run        *console.RunDetail
	CanOperate bool
	Tasks      []taskRow
	Gantt      ganttChart
	Live       bool
	LiveSrc    string
	ClearRun   string
	TaskAPI    string // prefix: + task id + "/clear" or "/mark"
	ConfJSON   string
}

func (ui *UI) run(w http.ResponseWriter, r *http.Request) {
	dagID, runID := r.PathValue("dag"), r.PathValue("run")
	d, err := ui.base(r, dagID+" · "+runID, "dags")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	who := ui.caller(r)
	det, err := ui.cfg.Console.DAG(r.Context(), who, dagID)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	run, err := ui.cfg.Console.Run(r.Context(), who, dagID, runID)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	p := runPage{DAG: det, Run: run, CanOperate: canOperate(d.Me, det.Owner), Live: unfinished(run.State),
		LiveSrc:  "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID) + "?live=1",
		ClearRun: apiRun(dagID, runID) + "/clear", TaskAPI: apiRun(dagID, runID) + "/tasks/",
		ConfJSON: prettyJSON(run.Conf)}
	base := "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID) + "/tasks/"
	for _, t := range run.Tasks {
		p.Tasks = append(p.Tasks, taskRow{TaskInstanceView: t, Href: base + url.PathEscape(t.TaskID)})
		if unfinished(t.State) {
			p.Live = true
		}
	}
	var bars []ganttInput
	for _, a := range run.Attempts {
		bars = append(bars, ganttInput{Task: a.TaskID, Try: a.Try, State: a.State, Queued: a.QueuedAt, Start: a.StartedAt, End: a.EndedAt,
			Href: base + url.PathEscape(a.TaskID) + "?try=" + strconv.Itoa(a.Try)})
	}
	p.Gantt = layoutGantt(bars, ui.cfg.Now(), location(det.Timezone))
	d.Page = p
	ui.render(w, r, "run", d)
}

// ---- Attempt page: Me + DAG + Task (the task's state and its attempts) + Attempt + Log.

type taskPage struct {
	DAG        *console.DAGDetail
	RunID      string
	TaskID     string
	TI         *console.TaskInstanceView
	Attempts   []console.AttemptView
	Attempt    *console.AttemptDetail
	Log        console.LogChunk
	Try        int
	CanOperate bool
	Live       bool
	LiveSrc    string
	Self       string
	RunHref    string
	ClearAPI   string
	MarkAPI    string
	Duration   string
}

func (ui *UI) task(w http.ResponseWriter, r *http.Request) {
	dagID, runID, taskID := r.PathValue("dag"), r.PathValue("run"), r.PathValue("task")
	d, err := ui.base(r, taskID+" · "+dagID, "dags")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	who := ui.caller(r)
	det, err := ui.cfg.Console.DAG(r.Context(), who, dagID)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	task, err := ui.cfg.Console.Task(r.Context(), who, dagID, runID, taskID)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	try, _ := strconv.Atoi(r.URL.Query().Get("try"))
	runHref := "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID)
	p := taskPage{DAG: det, RunID: runID, TaskID: taskID, Try: try, CanOperate: canOperate(d.Me, det.Owner),
		RunHref: runHref, Self: runHref + "/tasks/" + url.PathEscape(taskID),
		ClearAPI: apiRun(dagID, runID) + "/tasks/" + url.PathEscape(taskID) + "/clear",
		MarkAPI:  apiRun(dagID, runID) + "/tasks/" + url.PathEscape(taskID) + "/mark"}
	p.TI, p.Attempts = &task.Instance, task.Attempts
	live := url.Values{"live": {"1"}}
	if try > 0 {
		live.Set("try", strconv.Itoa(try))
	}
	p.LiveSrc = p.Self + "?" + live.Encode()
	// The current try keeps polling while the task can still change; an earlier try only
	// while its own attempt runs.
	p.Live = try == 0 && unfinished(p.TI.State)
	if len(p.Attempts) > 0 {
		show := try
		if show == 0 { // the latest try
			for _, a := range p.Attempts {
				show = max(show, a.Try)
			}
		}
		a, err := ui.cfg.Console.Attempt(r.Context(), who, dagID, runID, taskID, show)
		if err != nil {
			ui.fail(w, r, err)
			return
		}
		p.Attempt = a
		p.Try = a.Try
		end := a.EndedAt
		if end == nil {
			now := ui.cfg.Now()
			end = &now
		}
		p.Duration = duration(&a.StartedAt, end)
		p.Log, err = ui.cfg.Console.Log(r.Context(), who, dagID, runID, taskID, a.Try, 0)
		if err != nil {
			ui.fail(w, r, err)
			return
		}
		p.Live = p.Live || unfinished(a.State)
	}
	d.Page = p
	ui.render(w, r, "task", d)
}

// ---- Variables: Me + Variables.

func (ui *UI) variables(w http.ResponseWriter, r *http.Request) {
	d, err := ui.base(r, "Variables", "variables")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	vars, err := ui.cfg.Console.Variables(r.Context(), ui.caller(r))
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	d.Page = struct {
		Vars     any
		CanWrite bool
		API      string
	}{vars, d.Me.Role == "admin", apiBase + "/variables/"}
	ui.render(w, r, "variables", d)
}

// ---- Audit log: Me + Audit.

func (ui *UI) audit(w http.ResponseWriter, r *http.Request) {
	d, err := ui.base(r, "Audit log", "audit")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	aq := console.AuditQuery{DagID: strings.TrimSpace(q.Get("dag")), PageToken: q.Get("page"), Limit: 100}
	page, err := ui.cfg.Console.Audit(r.Context(), ui.caller(r), aq)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	d.Page = struct {
		DagID string
		Audit console.AuditPage
	}{aq.DagID, page}
	ui.render(w, r, "audit", d)
}

// ---- Slack inbox (dev): Me + the fake Slack's messages.

func (ui *UI) slack(w http.ResponseWriter, r *http.Request) {
	d, err := ui.base(r, "Slack inbox", "slack")
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	msgs, err := ui.cfg.SlackInbox(r.Context())
	if err != nil {
		ui.fail(w, r, fmt.Errorf("read the fake Slack's inbox: %w", err))
		return
	}
	type msg struct {
		SlackMessage
		Reply  bool
		Blocks string
		// TZ is the zone the time is shown in: the DAG's the message is about, else UTC.
		TZ string
	}
	zones := map[string]string{} // DAG id → timezone, read once per page
	zoneOf := func(dagID string) string {
		if dagID == "" {
			return "UTC"
		}
		if tz, ok := zones[dagID]; ok {
			return tz
		}
		tz := "UTC"
		if det, err := ui.cfg.Console.DAG(r.Context(), ui.caller(r), dagID); err == nil && det.Timezone != "" {
			tz = det.Timezone
		}
		zones[dagID] = tz
		return tz
	}
	var out []msg
	for i := len(msgs) - 1; i >= 0; i-- { // newest first
		m := msgs[i]
		mm := msg{SlackMessage: m, Reply: m.ThreadTS != "" && m.ThreadTS != m.TS, TZ: zoneOf(MessageDAG(m))}
		if m.Blocks != nil {
			mm.Blocks = prettyJSON(m.Blocks)
		}
		out = append(out, mm)
	}
	d.Page = struct {
		Messages []msg
		LiveSrc  string
	}{out, "/slack?live=1"}
	ui.render(w, r, "slack", d)
}
