package web_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/emulators/emutest"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/web"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// chromiumPath is Debian's Chromium; a test tool's own browser download does not work here.
const chromiumPath = "/usr/bin/chromium"

var (
	updraftBin    string
	testStandIns  *local.StandIns
	screenshotDir = filepath.Join("..", "..", "docs", "screenshots")
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run is emutest.Main's work, done here so that the worker binary and the stand-ins are
// cleaned up before the process exits.
func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "updraft-web-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	updraftBin = filepath.Join(dir, "updraft")
	if out, err := exec.Command("go", "build", "-o", updraftBin, "github.com/updraft-dev/updraft/cmd/updraft").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build updraft (the worker): %v\n%s", err, out)
		return 2
	}
	s, err := localtest.StartStandIns(filepath.Join(dir, "stand-ins"), []slackfake.User{{ID: "U1", Name: "owner", Email: "owner@example.com"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Stop()
	testStandIns = s
	if set, ok := emulators.FromEnv(); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := set.WaitReady(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "the emulators named in the environment do not answer: %v\n", err)
			return 2
		}
		return m.Run()
	}
	if err := emulators.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "these tests need the Firestore and Pub/Sub emulators:\n%v\n", err)
		return 2
	}
	set, err := emulators.StartAll(context.Background(), filepath.Join(dir, "emulators"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	set.Apply()
	code := m.Run()
	if err := set.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// The DAGs the browser test deploys: one that succeeds, one whose check fails on its first
// try and succeeds once cleared (the command leaves a marker the second try finds), and a
// file that does not load.
const (
	okDAG = `id: ok_dag
owner: owner@example.com
description: Three shell steps that succeed.
timezone: Asia/Seoul
tags: [demo]
params: {region: eu}
tasks:
  - {id: extract, type: shell, with: {command: "echo extracting; echo '{\"rows\": 42}'"}}
  - {id: transform, type: shell, needs: [extract], with: {command: "echo transforming"}}
  - {id: load, type: shell, needs: [transform], with: {command: "echo loading"}}
  - {id: report, type: shell, needs: [extract], with: {command: "echo report"}}
`
	flakyDAG = `id: flaky_dag
owner: owner@example.com
description: Fails on the first try, succeeds after a clear.
tasks:
  - {id: prepare, type: shell, with: {command: "echo ready"}}
  - id: check
    type: shell
    needs: [prepare]
    with:
      command: |
        if [ -f "$MARKER" ]; then echo "marker found: all good"; exit 0; fi
        touch "$MARKER"
        echo "checking the input" 
        echo "input not ready: first try fails" >&2
        exit 3
      env: {MARKER: "%s"}
  - {id: publish, type: shell, needs: [check], with: {command: "echo published"}}
`
	brokenDAG = "id: broken_dag\nowner: owner@example.com\ntasks:\n  - {id: a, type: no_such_type}\n"
)

// wideDAG is 100 noop tasks: 25 sources, each extracted, validated and loaded, 24 marts
// that each need a few loads, and a final report; the graph must stay readable.
func wideDAG() string {
	var b strings.Builder
	b.WriteString("id: wide_dag\nowner: owner@example.com\ndescription: 100 tasks, to see the graph at size.\ntasks:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "  - {id: extract_source_%02d, type: noop}\n", i)
		fmt.Fprintf(&b, "  - {id: validate_source_%02d, type: noop, needs: [extract_source_%02d]}\n", i, i)
		fmt.Fprintf(&b, "  - {id: load_source_%02d, type: noop, needs: [validate_source_%02d]}\n", i, i)
	}
	var marts []string
	for i := range 24 {
		id := fmt.Sprintf("mart_%02d", i)
		marts = append(marts, id)
		fmt.Fprintf(&b, "  - {id: %s, type: noop, needs: [load_source_%02d, load_source_%02d, load_source_%02d]}\n", id, i, (i+1)%25, (i+7)%25)
	}
	fmt.Fprintf(&b, "  - {id: report_all_marts, type: noop, needs: [%s]}\n", strings.Join(marts, ", "))
	return b.String()
}

type uiBundle struct {
	ctx   context.Context
	stack *local.Stack
	url   string
}

// startUI runs a local stack on its own project, deploys the test DAGs from a folder that
// also holds a broken file, and serves the UI (auth in dev mode, as operator@example.com,
// overridable per request with X-Updraft-Dev-User) on 127.0.0.1.
func startUI(t *testing.T) *uiBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	project := emutest.Project(t)
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	stderr := &localtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := local.Open(ctx, local.Config{
		Project: project, Env: append(set.Env(), testStandIns.Env()...), LogDir: t.TempDir(),
		WorkerCmd: []string{updraftBin, "worker"}, TickEvery: time.Second,
		Log: log, WorkerStderr: stderr,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
		if t.Failed() {
			t.Logf("stack log:\n%s", stderr.String())
		}
	})

	dagDir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "check-ran-once")
	// A scheduled DAG whose first interval starts tomorrow: the list shows its schedule, its
	// timezone and its next run, and the ticker creates no run during the test.
	seoul, _ := time.LoadLocation("Asia/Seoul")
	nightly := fmt.Sprintf("id: nightly_dag\nowner: owner@example.com\ndescription: Runs at 02:00 in Seoul.\n"+
		"schedule: \"0 2 * * *\"\ntimezone: Asia/Seoul\nstart: %s\ntasks:\n  - {id: work, type: noop}\n",
		time.Now().In(seoul).AddDate(0, 0, 1).Format(time.DateOnly))
	files := map[string]string{"ok_dag.yaml": okDAG, "flaky_dag.yaml": fmt.Sprintf(flakyDAG, marker), "broken_dag.yaml": brokenDAG,
		"wide_dag.yaml": wideDAG(), "nightly_dag.yaml": nightly}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dagDir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := dag.Options{ValidateCron: func(e string) error { _, err := schedule.ParseCron(e); return err }}
	for _, name := range []string{"ok_dag.yaml", "flaky_dag.yaml", "wide_dag.yaml", "nightly_dag.yaml"} {
		d, err := dag.Parse(name, []byte(files[name]), opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Engine.Deploy(ctx, d, []byte(files[name])); err != nil {
			t.Fatal(err)
		}
		if err := st.Engine.SetPaused(ctx, d.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	acc := access.New(st.Store, nil)
	for email, role := range map[string]access.Role{"operator@example.com": access.Operator, "viewer@example.com": access.Viewer,
		"admin@example.com": access.Admin} {
		if _, err := acc.Grant(ctx, email, role, access.Actor{Who: "test", From: "cli"}); err != nil {
			t.Fatal(err)
		}
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	c := console.New(console.Config{Engine: st.Engine, Store: st.Store, Access: acc, Logs: console.FileLogs{},
		ImportErrors: console.DirImportErrors(dagDir, opts)})
	h := web.New(web.Config{
		Console: c, API: api.New(c, api.Options{Identify: web.Identify, CSRFSecret: secret}),
		Auth: auth.NewDev("operator@example.com", log).Middleware, CSRFSecret: secret, Dev: true,
		SlackInbox: web.FakeSlackInbox(testStandIns.Slack.URL), Log: log, PollInterval: 300 * time.Millisecond,
	})
	srv := httptest.NewServer(h) // 127.0.0.1:0
	t.Cleanup(srv.Close)
	return &uiBundle{ctx: ctx, stack: st, url: srv.URL}
}

// browser starts Debian's headless Chromium for the test and stops it when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Chromium at %s: apt-get install chromium (%v)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v (apt-get install chromium)", chromiumPath, err)
	}
	return bctx
}

// step runs browser actions with a deadline, failing the test with what was being done
// and the page's main content.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage main:\n%s", what, err, mainHTML(ctx))
	}
}

// get runs one browser action that returns a value, with a deadline.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v\npage main:\n%s", what, err, mainHTML(ctx))
	}
	return v
}

func mainHTML(ctx context.Context) string {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	html, _ := chromedp.Run(sctx, chromedp.OuterHTML(chromedp.CSS("main")))
	return html
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	q, _ := json.Marshal(sel)
	return get(t, ctx, "read "+sel, chromedp.Evaluate[string](`document.querySelector(`+string(q)+`).innerText`))
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// screenshot saves the page to docs/screenshots/NAME.png when UPDRAFT_SCREENSHOTS=1.
func screenshot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if os.Getenv("UPDRAFT_SCREENSHOTS") != "1" {
			return chromedp.Void{}, nil
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, tg) // 100: PNG
		if err != nil {
			return chromedp.Void{}, err
		}
		if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(screenshotDir, name+".png"), buf, 0o644)
	}
}

// fits1024 checks that the page needs no sideways scroll in a 1024 px wide window (wide
// tables and graphs scroll inside their own box), then restores 1280 px.
func fits1024(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	step(t, ctx, "narrow the window to 1024 px", chromedp.EmulateViewport(1024, 768))
	if wide := get(t, ctx, "measure", chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); wide > 1024 {
		t.Errorf("%s is %d px wide in a 1024 px window", page, wide)
	}
	step(t, ctx, "widen the window to 1280 px", chromedp.EmulateViewport(1280, 900))
}

// asUser makes the tab's requests carry X-Updraft-Dev-User: the dev guard then acts as email.
func asUser(email string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{auth.DevUserHeader: email}})
		return err
	})
}

func TestBrowserTriggerWatchFailClearAndViewer(t *testing.T) {
	u := startUI(t)
	b := browser(t)

	// The DAG list: both DAGs, the broken file at the top, no sideways scroll at 1024 px.
	step(t, b, "load the DAG list",
		chromedp.Navigate(u.url+"/"),
		visible(`tr[data-dag="ok_dag"] a.dag-id`),
		visible(`tr[data-dag="flaky_dag"]`),
	)
	if got := text(t, b, ".banner"); !strings.Contains(got, "1 DAG file did not load") || !strings.Contains(got, "broken_dag.yaml") {
		t.Errorf("the import errors banner says %q", got)
	}
	if got := text(t, b, `tr[data-dag="nightly_dag"]`); !strings.Contains(got, "0 2 * * *") || !strings.Contains(got, "Asia/Seoul") || !strings.Contains(got, "02:00:00 KST") {
		t.Errorf("the nightly DAG's row says %q; want its schedule, timezone and next run in KST", got)
	}
	if title := get(t, b, "read the next run's title", chromedp.Evaluate[string](`document.querySelector('tr[data-dag="nightly_dag"] time').title`)); !strings.HasPrefix(title, "UTC ") || !strings.HasSuffix(title, "17:00:00") {
		t.Errorf("the next run's hover title is %q; want it in UTC (17:00 the day before)", title)
	}
	fits1024(t, b, "the DAG list")

	// Trigger ok_dag from its page: the dialog previews the run; the grid shows it finish
	// without a reload (a marker set on the page survives).
	step(t, b, "open ok_dag and ask to trigger it",
		chromedp.Navigate(u.url+"/dags/ok_dag"),
		visible(`#no-runs`),
		chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true; undefined`),
		click(`#trigger summary`),
		visible(`#conf`),
		click(`#trigger-submit`),
		visible(`#confirm button[value=confirm]:not([disabled])`),
	)
	if preview := text(t, b, "#confirm .body"); !strings.Contains(preview, "ok_dag") {
		t.Errorf("the trigger preview does not say what it will run: %q", preview)
	}
	if focused := get(t, b, "find the focus", chromedp.Evaluate[string](`document.activeElement.value || document.activeElement.tagName`)); focused != "confirm" {
		t.Errorf("with the preview in, the focus is on %q; want the Confirm button", focused)
	}
	step(t, b, "confirm and watch the run succeed in the grid",
		click(`#confirm button[value=confirm]`),
		visible(`#grid thead a.sq[data-state="success"]`),
		visible(`#grid tr[data-task="load"] a.sq[data-state="success"]`),
		screenshot("dag-grid"),
	)
	if same := get(t, b, "check for a reload", chromedp.Evaluate[bool](`window.__sameDocument === true`)); !same {
		t.Error("the page reloaded to show the run; the grid should update in place")
	}

	// The live fragment answers 304 to a poll that already has it.
	etag, status := poll(t, u.url+"/dags/ok_dag?tab=grid&live=1", "")
	if _, again := poll(t, u.url+"/dags/ok_dag?tab=grid&live=1", etag); status != 200 || again != http.StatusNotModified {
		t.Errorf("polling the grid: %d then %d with If-None-Match; want 200 then 304", status, again)
	}

	step(t, b, "the graph, coloured by the run",
		click(`#tab-graph`),
		visible(`#graph a.node[data-task="load"][data-state="success"]`),
		screenshot("dag-graph"),
	)
	if _, err := u.stack.Engine.Trigger(u.ctx, "wide_dag", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	step(t, b, "the graph of 100 tasks",
		chromedp.Navigate(u.url+"/dags/wide_dag?tab=graph"),
		visible(`#graph a.node[data-task="report_all_marts"][data-state="success"]`),
		screenshot("dag-graph-100"),
	)
	if n := get(t, b, "count the nodes", chromedp.Evaluate[int](`document.querySelectorAll("#graph .node").length`)); n != 100 {
		t.Errorf("the graph draws %d tasks; want 100", n)
	}
	step(t, b, "the run's Gantt",
		chromedp.Navigate(u.url+"/dags/ok_dag"),
		visible(`#grid thead a.sq`),
		click(`#grid thead a.sq`),
		visible(`#gantt a.bar`),
		visible(`#tasks tr[data-task="report"]`),
		screenshot("run-gantt"),
	)
	fits1024(t, b, "the run page")

	// flaky_dag's check fails on its first try: open its log, clear it, see it succeed.
	if _, err := u.stack.Engine.Trigger(u.ctx, "flaky_dag", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	step(t, b, "watch flaky_dag fail and open the failed attempt",
		chromedp.Navigate(u.url+"/dags/flaky_dag"),
		visible(`#grid tr[data-task="check"] a.sq[data-state="failed"]`),
		visible(`#grid tr[data-task="publish"] a.sq[data-state="upstream_failed"]`),
		click(`#grid tr[data-task="check"] a.sq`),
		visible(`#attempt-error`),
		visible(`#log`),
		screenshot("attempt-log"),
	)
	fits1024(t, b, "the attempt page")
	if e, l := text(t, b, "#attempt-error"), text(t, b, "#log"); !strings.Contains(e, "first try fails") || !strings.Contains(l, "checking the input") {
		t.Errorf("the failed attempt shows error %q and log %q", e, l)
	}
	step(t, b, "ask to clear check with its downstream",
		click(`#clear-task`),
		visible(`#confirm ul.affected li`),
	)
	affected := get(t, b, "read the preview", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#confirm ul.affected li")].map(li => li.textContent)`))
	if got := strings.Join(affected, ","); !strings.Contains(got, "check") || !strings.Contains(got, "publish") || strings.Contains(got, "prepare") {
		t.Errorf("clearing check with downstream would affect %v; want check and publish, not prepare", affected)
	}
	step(t, b, "confirm the clear and watch the task succeed",
		click(`#confirm button[value=confirm]`),
		visible(`#task-state[data-state="success"]`),
		visible(`#log`),
	)
	step(t, b, "after the clear", screenshot("attempt-after-clear"))
	if l := text(t, b, "#log"); !strings.Contains(l, "marker found") {
		t.Errorf("the second try's log is %q", l)
	}

	// A viewer: no action buttons, and the API refuses a forced POST (with a valid CSRF
	// token, so the refusal is the role's), which the audit log records.
	v, cancelTab := chromedp.NewContext(b)
	defer cancelTab()
	if err := chromedp.Do(v); err != nil { // opens the tab, for as long as v lives (no deadline here)
		t.Fatal(err)
	}
	step(t, v, "open ok_dag as a viewer",
		asUser("viewer@example.com"),
		chromedp.Navigate(u.url+"/dags/ok_dag"),
		visible(`#readonly-note`),
		screenshot("dag-viewer"),
	)
	if role := text(t, v, "#role"); role != "viewer" {
		t.Errorf("the viewer's page says role %q", role)
	}
	if shown := get(t, v, "look for action buttons", chromedp.Evaluate[bool](`!!document.querySelector("#trigger, #pause-button, form.action")`)); shown {
		t.Error("a viewer sees action buttons")
	}
	forced := get(t, v, "force a trigger", chromedp.Evaluate[map[string]any](`fetch("/api/v1/dags/ok_dag/runs", {method: "POST",
		headers: {"Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content}, body: "{}"})
		.then(async r => ({status: r.status, body: await r.json()}))`, chromedp.EvalAwaitPromise))
	if forced["status"] != float64(403) || !strings.Contains(fmt.Sprint(forced["body"]), "forbidden") {
		t.Errorf("a viewer's forced trigger got %v; want 403 forbidden", forced)
	}
	step(t, b, "open the audit log", chromedp.Navigate(u.url+"/audit"), visible(`#audit tbody tr`), screenshot("audit-log"))
	audit := text(t, b, "#audit")
	for _, want := range []string{console.ActionTrigger, console.ActionClear, "refused", "viewer@example.com"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	// Variables are the admins' (the console's rule): set one as an admin.
	adm, cancelAdmin := chromedp.NewContext(b)
	defer cancelAdmin()
	if err := chromedp.Do(adm); err != nil {
		t.Fatal(err)
	}
	step(t, adm, "set a variable from the UI as an admin",
		asUser("admin@example.com"),
		chromedp.Navigate(u.url+"/variables"),
		visible(`#variable-form input[name=name]`),
		chromedp.SendKeys(chromedp.CSS(`#variable-form input[name=name]`), "region"),
		chromedp.SendKeys(chromedp.CSS(`#variable-form input[name=value]`), "eu-west"),
		click(`#variable-form button[type=submit]`),
		visible(`#confirm button[value=confirm]:not([disabled])`),
		click(`#confirm button[value=confirm]`),
		visible(`#variables tbody th code`),
	)
	if vars := text(t, adm, "#variables"); !strings.Contains(vars, "region") || !strings.Contains(vars, "eu-west") {
		t.Errorf("the variables page shows %q after setting region", vars)
	}
	step(t, b, "the fake Slack's inbox", chromedp.Navigate(u.url+"/slack"), visible(`#live`))
	step(t, b, "the DAG list with its recent runs",
		chromedp.Navigate(u.url+"/"),
		visible(`tr[data-dag="flaky_dag"] .runs a.sq`),
		screenshot("dag-list"),
	)
}

// poll GETs a live fragment with If-None-Match etag, as operator, returning its ETag and
// the status.
func poll(t *testing.T, url, etag string) (string, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("ETag"), resp.StatusCode
}
