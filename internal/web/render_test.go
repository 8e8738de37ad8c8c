package web

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// TestPagesRender renders every page from plain values: the templates parse, execute, and
// show what each page promises (no backend needed; the browser test drives the real one).
func TestPagesRender(t *testing.T) {
	ui, err := newUI(Config{Dev: true, SlackInbox: nil})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
	end := t0.Add(90 * time.Second)
	me := console.Me{Email: "kim@example.com", Role: "viewer"}
	sum := console.DAGSummary{DagID: "orders", Owner: "kim@example.com", Schedule: "0 2 * * *", Timezone: "Asia/Seoul",
		NextRunAt: &end, Version: "abcdef0123456789", RecentRuns: []console.RunBrief{{RunID: "r2", State: "running", LogicalDate: t0}, {RunID: "r1", State: "failed", LogicalDate: t0}}}
	det := &console.DAGDetail{DAGSummary: sum, Tasks: []console.TaskSummary{{ID: "extract", Type: "shell"}, {ID: "load", Type: "shell", Upstream: []string{"extract"}}},
		Source: "id: orders\ntasks: []\n", DeployedAt: t0, Params: map[string]any{"day": map[string]any{"default": "2026-03-01"}}}
	grid := &console.Grid{DagID: "orders", Tasks: det.Tasks, Runs: []console.GridRun{
		{RunBrief: sum.RecentRuns[0], Cells: []console.GridCell{{State: "success", Try: 1}, {State: "running", Try: 1}}},
		{RunBrief: sum.RecentRuns[1], Cells: []console.GridCell{{State: "failed", Try: 2}, {State: "upstream_failed"}}},
	}}
	run := &console.RunDetail{RunBrief: sum.RecentRuns[0], DagID: "orders", Conf: json.RawMessage(`{"a":1}`),
		Tasks:    []console.TaskInstanceView{{TaskID: "extract", State: "success", Try: 1, MaxTries: 1, StartedAt: &t0, EndedAt: &end}, {TaskID: "load", State: "running", Try: 1, MaxTries: 2}},
		Attempts: []console.AttemptView{{TaskID: "extract", Try: 1, State: "success", StartedAt: t0, EndedAt: &end}, {TaskID: "load", Try: 1, State: "running", StartedAt: end}}}

	page := func(name string, d pageData) string {
		t.Helper()
		d.Me, d.Legend = me, legendOrder
		var b bytes.Buffer
		if err := ui.pages[name].ExecuteTemplate(&b, "base.html", d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var live bytes.Buffer
		if ui.pages[name].Lookup("live") != nil {
			if err := ui.pages[name].ExecuteTemplate(&live, "live", d); err != nil {
				t.Fatalf("%s live: %v", name, err)
			}
		}
		return b.String()
	}
	want := func(name, html string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(html, p) {
				t.Errorf("%s page lacks %q", name, p)
			}
		}
	}
	sum.TickLate = &scheduler.TickLate{At: t0, By: 300, Skipped: 3} // a late tick shows on the list and the DAG page
	det.TickLate = sum.TickLate
	list := dagsPage{List: console.DAGPage{DAGs: []console.DAGSummary{sum}, ImportErrors: []console.ImportError{{File: "bad.yaml", Line: 3, Message: "unknown field"}}}}
	list.Rows = []dagRow{{DAGSummary: sum, Runs: sum.RecentRuns, CanOperate: true, PauseAPI: "/api/v1/dags/orders/paused", PauseBody: `{"paused":true}`}}
	html := page("dags", pageData{Page: list})
	want("dags", html, "bad.yaml:3", `title="UTC 2026-03-01 01:01:30"`, "2026-03-01 10:01:30 KST", `aria-label="manual run r2: running"`[0:0], "st-running", "● active", "tick late · 3 skipped")

	for _, tab := range []string{"grid", "graph", "code", "backfills"} {
		p := dagPage{DAG: det, Tab: tab, CanOperate: true, ParamsJSON: paramsTemplate(det.Params)}
		p.Grid = buildGrid(grid, "")
		p.Live = p.Grid.Live
		if tab == "graph" {
			p.Graph = buildGraph(det, grid, p.Grid.Selected)
		}
		if tab == "code" {
			p.Source = []string{"id: orders"}
		}
		if tab == "backfills" {
			p.Grid = nil
			p.Backfills = []console.BackfillView{{BackfillID: "b1", From: "2026-01-01", To: "2026-01-05", State: "running", Total: 5, Considered: 2}}
		}
		html := page("dag", pageData{Page: p})
		switch tab {
		case "grid":
			// Oldest run left: r1 (failed) before r2 (running).
			if i1, i2 := strings.Index(html, `data-run="r1"`), strings.Index(html, `data-run="r2"`); i1 < 0 || i2 < i1 {
				t.Errorf("grid columns not oldest first")
			}
			want(tab, html, `id="tick-late-badge"`, `data-live="true"`, `&#34;day&#34;: &#34;2026-03-01&#34;`, `data-state="upstream_failed"`, "?try=2")
		case "graph":
			want(tab, html, `<svg id="graph"`, `data-task="load" data-state="running"`, "marker-end")
		case "code":
			want(tab, html, "<span>id: orders</span>")
		case "backfills":
			want(tab, html, `<progress max="5" value="2"`, `data-api="/api/v1/backfills/b1" data-method="DELETE"`)
		}
	}
	rp := runPage{DAG: det, Run: run, CanOperate: false, Live: true, Tasks: []taskRow{{TaskInstanceView: run.Tasks[0]}}}
	rp.Gantt = layoutGantt([]ganttInput{{Task: "extract", State: "success", Start: t0, End: &end}}, end, location("Asia/Seoul"))
	html = page("run", pageData{Page: rp})
	want("run", html, `<svg id="gantt"`, "1m30s")
	if strings.Contains(html, "Clear run") {
		t.Error("a viewer sees Clear run")
	}
	ad := &console.AttemptDetail{AttemptView: run.Attempts[0], MaxTries: 1, Error: "exit status 3", Rendered: json.RawMessage(`{"command":"echo ***"}`), Current: true}
	tp := taskPage{DAG: det, RunID: "r2", TaskID: "extract", TI: &run.Tasks[0], Attempts: run.Attempts[:1], Attempt: ad, Try: 1,
		Log: console.LogChunk{Entries: []console.LogEntry{{Time: t0, Severity: "ERROR", Message: "boom <b>"}}, Done: true}}
	html = page("task", pageData{Page: tp})
	want("task", html, "exit status 3", "boom &lt;b&gt;", `&#34;command&#34;: &#34;echo ***&#34;`, "sev-ERROR")
	html = page("variables", pageData{Page: struct {
		Vars     []fsstore.Variable
		CanWrite bool
		API      string
	}{[]fsstore.Variable{{Name: "region", Value: "eu", UpdatedAt: t0}}, false, "/api/v1/variables/"}})
	want("variables", html, "region")
	html = page("audit", pageData{Page: struct {
		DagID string
		Audit console.AuditPage
	}{"", console.AuditPage{Entries: []fsstore.AuditEntry{{Who: "kim@example.com", Action: "run.trigger", DagID: "orders", Result: "refused", At: t0}}}}})
	want("audit", html, "⊘ refused", "run.trigger")
	html = page("error", pageData{Page: errorPage{Status: 403, Code: "forbidden", Message: "kim holds only viewer"}})
	want("error", html, "Not allowed", "kim holds only viewer")
}

func TestHandlerServesStaticAndNotFound(t *testing.T) {
	h := New(Config{})
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/static/app.css", 200, ".sq"},
		{"/static/app.js", 200, "If-None-Match"},
		{"/no/such/page", 404, "no page at /no/such/page"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("GET %s: %d %q; want %d with %q", c.path, rec.Code, rec.Body.String()[:min(200, rec.Body.Len())], c.status, c.want)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: no X-Frame-Options", c.path)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/no/such/page", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("pages' CSP %q", csp)
	}
}

func TestCanOperateAndParams(t *testing.T) {
	for _, c := range []struct {
		me    console.Me
		owner string
		want  bool
	}{
		{console.Me{Email: "v@x.com", Role: "viewer"}, "o@x.com", false},
		{console.Me{Email: "o@x.com", Role: "viewer"}, "O@x.com", true}, // the owner operates their own DAG
		{console.Me{Email: "p@x.com", Role: "operator"}, "o@x.com", true},
		{console.Me{Email: "a@x.com", Role: "admin"}, "o@x.com", true},
		{console.Me{Email: "", Role: "none"}, "", false},
	} {
		if got := canOperate(c.me, c.owner); got != c.want {
			t.Errorf("canOperate(%+v, %s) = %v", c.me, c.owner, got)
		}
	}
	if got := paramsTemplate(map[string]any{"day": map[string]any{"default": "x", "type": "string"}, "n": 3.0}); !strings.Contains(got, `"day": "x"`) || !strings.Contains(got, `"n": 3`) {
		t.Errorf("paramsTemplate: %s", got)
	}
	if got := paramsTemplate(nil); got != "{}" {
		t.Errorf("paramsTemplate(nil) = %s", got)
	}
	if got := prettyJSON(json.RawMessage(`{"command":"a \u003e b \u0026\u0026 c","n":1.50}`)); got != "{\n  \"command\": \"a > b && c\",\n  \"n\": 1.50\n}" {
		t.Errorf("prettyJSON: %s", got)
	}
	if got := string(timeTag((*time.Time)(nil), "UTC")); !strings.Contains(got, "–") {
		t.Errorf("nil time: %s", got)
	}
}
