package console_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
	"github.com/updraft-dev/updraft/scheduler"
)

func TestMain(m *testing.M) { emutest.Main(m) }

const etlDAG = `id: etl
owner: owner@example.com
description: nightly load
tags: [sales]
schedule: "0 3 * * *"
timezone: Asia/Seoul
start: 2025-01-01
params:
  region: eu
  limit: 10
tasks:
  - {id: extract, type: shell, with: {command: "echo extracting"}}
  - {id: transform, type: shell, with: {command: "echo transforming"}, needs: [extract]}
  - {id: load, type: shell, with: {command: "echo loading"}, needs: [transform]}
  - {id: report, type: shell, with: {command: "echo reporting"}}
`

var (
	viewer   = console.Caller{Email: "viewer@example.com", From: "api"}
	operator = console.Caller{Email: "op@example.com", From: "api"}
	admin    = console.Caller{Email: "admin@example.com", From: "ui"}
	owner    = console.Caller{Email: "owner@example.com", From: "api"}
	stranger = console.Caller{Email: "nobody@example.com", From: "api"}
)

func setup(t *testing.T) *consoletest.Bundle {
	t.Helper()
	b := consoletest.New(t)
	b.Grant(t, viewer.Email, access.Viewer)
	b.Grant(t, operator.Email, access.Operator)
	b.Grant(t, admin.Email, access.Admin)
	b.Deploy(t, etlDAG)
	return b
}

func wantCode(t *testing.T, err error, code string) *console.Error {
	t.Helper()
	ce := console.AsError(err)
	if ce == nil || ce.Code != code {
		t.Fatalf("got %v; want a %s error", err, code)
	}
	return ce
}

func TestRolesAndAudit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.Ctx

	// A viewer may read but not act; the refusal is audited.
	if _, err := b.Console.ListDAGs(ctx, viewer, console.DAGQuery{}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Console.Trigger(ctx, viewer, console.TriggerRequest{DagID: "etl"})
	ce := wantCode(t, err, console.CodeForbidden)
	if ce.Status != 403 || !strings.Contains(ce.Message, "operator") {
		t.Errorf("refusal = %d %q", ce.Status, ce.Message)
	}
	page, err := b.Console.Audit(ctx, viewer, console.AuditQuery{DagID: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].Who != viewer.Email || page.Entries[0].Result != access.ResultRefused ||
		page.Entries[0].Action != console.ActionTrigger {
		t.Fatalf("audit = %+v; want one refused trigger by the viewer", page.Entries)
	}

	// Someone with no role can't even read; no identity is unauthenticated.
	_, err = b.Console.ListDAGs(ctx, stranger, console.DAGQuery{})
	wantCode(t, err, console.CodeForbidden)
	_, err = b.Console.ListDAGs(ctx, console.Caller{}, console.DAGQuery{})
	wantCode(t, err, console.CodeUnauthenticated)

	// The owner operates their own DAG without a grant; an operator any DAG.
	if _, err := b.Console.Trigger(ctx, owner, console.TriggerRequest{DagID: "etl"}); err != nil {
		t.Fatalf("owner trigger: %v", err)
	}
	b.Clock.Add(time.Second)
	if _, err := b.Console.SetPaused(ctx, operator, "etl", true, false); err != nil {
		t.Fatalf("operator pause: %v", err)
	}

	// Variables and users are the admin's.
	for _, who := range []console.Caller{viewer, operator, owner} {
		wantCode(t, b.Console.SetVariable(ctx, who, "region", "eu"), console.CodeForbidden)
		_, err := b.Console.Users(ctx, who)
		wantCode(t, err, console.CodeForbidden)
		_, err = b.Console.Grant(ctx, who, "x@example.com", "admin")
		wantCode(t, err, console.CodeForbidden)
	}
	if err := b.Console.SetVariable(ctx, admin, "region", "eu"); err != nil {
		t.Fatal(err)
	}
	// Reading them is a viewer's: they are not secret (docs/access.md).
	vs, err := b.Console.Variables(ctx, viewer)
	if err != nil || len(vs) != 1 || vs[0].Value != "eu" {
		t.Fatalf("variables as a viewer = %v, %v", vs, err)
	}
	if _, err := b.Console.Grant(ctx, admin, "new@example.com", "viewer"); err != nil {
		t.Fatal(err)
	}
	us, err := b.Console.Users(ctx, admin)
	if err != nil || len(us) != 4 {
		t.Fatalf("users = %v, %v", us, err)
	}
	if err := b.Console.Revoke(ctx, admin, "new@example.com"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.Console.Revoke(ctx, admin, "new@example.com"), console.CodeNotFound)

	all, err := b.Console.Audit(ctx, admin, console.AuditQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range all.Entries {
		count[e.Action+"/"+e.Result]++
	}
	want := map[string]int{"dag.trigger/refused": 1, "dag.trigger/ok": 1, "dag.pause/ok": 1, "variables.set/refused": 3,
		"variables.set/ok": 1, "users.grant/refused": 3, "users.revoke/ok": 1}
	for k, n := range want {
		if count[k] < n {
			t.Errorf("audit has %d %s; want %d (all: %v)", count[k], k, n, count)
		}
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.Ctx
	r := b.Trigger(t, "etl")
	b.Drive(t, r)

	_, writes := b.Store.Counts()
	tr, err := b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`{"region":"us"}`), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.DryRun || len(tr.RunIDs) != 1 || !strings.HasPrefix(tr.RunIDs[0], "manual__") {
		t.Errorf("trigger preview = %+v", tr)
	}
	cl, err := b.Console.Clear(ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"transform"}, Downstream: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cl.TaskIDs, []string{"transform", "load"}) {
		t.Errorf("clear preview = %v; want transform, load", cl.TaskIDs)
	}
	up, err := b.Console.Clear(ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"transform"}, Upstream: true, DryRun: true})
	if err != nil || !slices.Equal(up.TaskIDs, []string{"extract", "transform"}) {
		t.Errorf("clear upstream preview = %v, %v", up, err)
	}
	if _, err := b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: "load", State: "failed", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Console.ClearRun(ctx, operator, "etl", r.RunID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Console.SetPaused(ctx, operator, "etl", true, true); err != nil {
		t.Fatal(err)
	}
	bf, err := b.Console.Backfill(ctx, operator, console.BackfillRequest{DagID: "etl", From: "2025-01-02", To: "2025-01-04", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(bf.LogicalDates) != 3 || bf.Backfill != nil {
		t.Errorf("backfill preview = %+v; want 3 logical dates", bf)
	}
	if _, after := b.Store.Counts(); after != writes {
		t.Fatalf("dry runs wrote %d documents", after-writes)
	}

	// The real clear does what the preview said.
	got, err := b.Console.Clear(ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"transform"}, Downstream: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.TaskIDs, cl.TaskIDs) {
		t.Errorf("cleared %v; preview said %v", got.TaskIDs, cl.TaskIDs)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.Ctx
	r := b.Trigger(t, "etl")

	_, err := b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`{"region": eu}`)})
	if ce := wantCode(t, err, console.CodeBadRequest); !strings.Contains(ce.Message, "not valid JSON") {
		t.Errorf("malformed conf: %q", ce.Message)
	}
	_, err = b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`[1]`)})
	wantCode(t, err, console.CodeBadRequest)
	_, err = b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`{"regoin": "eu"}`)})
	if ce := wantCode(t, err, console.CodeBadRequest); !strings.Contains(ce.Message, "regoin") {
		t.Errorf("unknown param: %q", ce.Message)
	}
	_, err = b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`{"limit": "ten"}`)})
	wantCode(t, err, console.CodeBadRequest)

	_, err = b.Console.DAG(ctx, viewer, "nope")
	wantCode(t, err, console.CodeNotFound)
	_, err = b.Console.Grid(ctx, viewer, "nope", console.GridQuery{})
	wantCode(t, err, console.CodeNotFound)
	_, err = b.Console.Run(ctx, viewer, "etl", "manual__nope")
	wantCode(t, err, console.CodeNotFound)
	_, err = b.Console.Attempts(ctx, viewer, "etl", r.RunID, "nope")
	wantCode(t, err, console.CodeNotFound)
	_, err = b.Console.Clear(ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"nope"}})
	if ce := wantCode(t, err, console.CodeNotFound); !strings.Contains(ce.Message, "nope") {
		t.Errorf("unknown task: %q", ce.Message)
	}
	_, err = b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: "load", State: "skipped"})
	wantCode(t, err, console.CodeBadRequest)
	_, err = b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: "extract", State: "success"})
	wantCode(t, err, console.CodeConflict) // queued
	_, err = b.Console.Backfill(ctx, operator, console.BackfillRequest{DagID: "etl", From: "2025-01-05", To: "2025-01-02"})
	wantCode(t, err, console.CodeBadRequest)
	_, err = b.Console.Attempt(ctx, viewer, "etl", r.RunID, "extract", 7)
	wantCode(t, err, console.CodeNotFound)
	_, err = b.Console.Runs(ctx, viewer, "etl", console.PageQuery{PageToken: "%%%"})
	wantCode(t, err, console.CodeBadRequest)

	// Ids typed with a slash, "..", or Firestore's reserved __x__ form name nothing: not
	// found, never an internal error about document paths.
	for _, id := range []string{"a/b", "../x", "__x__"} {
		_, err = b.Console.Run(ctx, viewer, "etl", id)
		wantCode(t, err, console.CodeNotFound)
		_, err = b.Console.Attempts(ctx, viewer, "etl", r.RunID, id)
		wantCode(t, err, console.CodeNotFound)
		_, err = b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: id, State: "success"})
		wantCode(t, err, console.CodeNotFound)
		_, err = b.Console.ClearRun(ctx, operator, "etl", id, false)
		wantCode(t, err, console.CodeNotFound)
		_, err = b.Console.Log(ctx, viewer, "etl", r.RunID, id, 1, 0)
		wantCode(t, err, console.CodeNotFound)
		wantCode(t, b.Console.DeleteVariable(ctx, admin, id), console.CodeNotFound)
	}
	for _, name := range []string{"a/b", "..", ".", "__x__"} {
		ce := wantCode(t, b.Console.SetVariable(ctx, admin, name, "v"), console.CodeBadRequest)
		if !strings.Contains(ce.Message, name) {
			t.Errorf("variable name %q: %q does not name it", name, ce.Message)
		}
	}

	// A removed DAG keeps its history readable but takes no action.
	if _, err := b.Engine.Prune(ctx, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	_, err = b.Console.Trigger(ctx, operator, console.TriggerRequest{DagID: "etl"})
	if ce := wantCode(t, err, console.CodeConflict); !strings.Contains(ce.Message, "removed") {
		t.Errorf("removed DAG: %q", ce.Message)
	}
	_, err = b.Console.ClearRun(ctx, operator, "etl", r.RunID, false)
	wantCode(t, err, console.CodeConflict)
	if _, err := b.Console.Run(ctx, viewer, "etl", r.RunID); err != nil {
		t.Errorf("history of a removed DAG: %v", err)
	}
}

func TestPausedDAGCanBeTriggered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.Console.SetPaused(b.Ctx, operator, "etl", true, false); err != nil {
		t.Fatal(err)
	}
	res, err := b.Console.Trigger(b.Ctx, operator, console.TriggerRequest{DagID: "etl", Conf: json.RawMessage(`{"region":"us","limit":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "paused") {
		t.Errorf("warnings = %v; want one saying the DAG is paused", res.Warnings)
	}
	d, err := b.Console.Run(b.Ctx, viewer, "etl", res.Run.RunID)
	if err != nil || string(d.Conf) != `{"limit":3,"region":"us"}` {
		t.Fatalf("run = %+v, %v", d, err)
	}
}

func TestRunAttemptAndLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := b.Ctx
	r := b.Trigger(t, "etl")
	b.Drive(t, r)

	d, err := b.Console.Run(ctx, viewer, "etl", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "success" || len(d.Tasks) != 4 || len(d.Attempts) != 4 {
		t.Fatalf("run = %s with %d tasks, %d attempts", d.State, len(d.Tasks), len(d.Attempts))
	}
	if d.Tasks[0].TaskID != "extract" || d.Tasks[3].TaskID != "report" {
		t.Errorf("tasks not in file order: %v", d.Tasks)
	}
	a, err := b.Console.Attempt(ctx, viewer, "etl", r.RunID, "load", 1)
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "success" || !a.Current || a.LogRef == "" {
		t.Errorf("attempt = %+v", a)
	}
	l, err := b.Console.Log(ctx, viewer, "etl", r.RunID, "load", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Done || l.Expired || len(l.Entries) == 0 || l.Next == 0 {
		t.Fatalf("log = %+v", l)
	}
	more, err := b.Console.Log(ctx, viewer, "etl", r.RunID, "load", 1, l.Next)
	if err != nil || len(more.Entries) != 0 || more.Next != l.Next {
		t.Errorf("log after the end = %+v, %v", more, err)
	}

	g, err := b.Console.Grid(ctx, viewer, "etl", console.GridQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Runs) != 1 || len(g.Tasks) != 4 || g.Runs[0].Cells[2].State != "success" || g.Runs[0].Cells[2].Try != 1 {
		t.Fatalf("grid = %+v", g)
	}
	// Once the engine keeps a finished run's cells on its document (engine.NoteRun), the grid
	// reads them there, and shows the same.
	if err := b.Engine.NoteRun(ctx, "etl", r.RunID); err != nil {
		t.Fatal(err)
	}
	reads0, _ := b.Store.Counts()
	gk, err := b.Console.Grid(ctx, viewer, "etl", console.GridQuery{})
	if err != nil {
		t.Fatal(err)
	}
	reads1, _ := b.Store.Counts()
	if a, b := fmt.Sprint(gk), fmt.Sprint(g); a != b {
		t.Errorf("grid from kept cells:\n%s\nfrom the task instances:\n%s", a, b)
	}
	if got := reads1 - reads0; got != 3 { // role, DAG, run
		t.Errorf("grid of a finished run with kept cells read %d documents; want 3", got)
	}
	// Cleared, the run runs again: its kept cells are dropped and the grid reads the tasks.
	if _, err := b.Console.Clear(ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"load"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Engine.NoteRun(ctx, "etl", r.RunID); err != nil {
		t.Fatal(err)
	}
	gc, err := b.Console.Grid(ctx, viewer, "etl", console.GridQuery{})
	if err != nil || gc.Runs[0].State != "running" || gc.Runs[0].Cells[2].State == "success" || gc.Runs[0].Cells[0].State != "success" {
		t.Errorf("grid after a clear = %+v, %v", gc.Runs, err)
	}
	// Finished again (without NoteRun: the grid keeps the cells it read itself), then a task
	// marked by hand in the finished run: the grid follows each time.
	b.Drive(t, r)
	for range 2 {
		g2, err := b.Console.Grid(ctx, viewer, "etl", console.GridQuery{})
		if err != nil || g2.Runs[0].State != "success" || g2.Runs[0].Cells[2].Try != 2 || g2.Runs[0].Cells[2].State != "success" {
			t.Fatalf("grid after the run finished again = %+v, %v", g2.Runs, err)
		}
	}
	if _, err := b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: "report", State: "failed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Console.Mark(ctx, operator, console.MarkRequest{DagID: "etl", RunID: r.RunID, TaskID: "extract", State: "failed"}); err != nil {
		t.Fatal(err)
	}
	g3, err := b.Console.Grid(ctx, viewer, "etl", console.GridQuery{})
	if err != nil || g3.Runs[0].State != "failed" || g3.Runs[0].Cells[0].State != "failed" || g3.Runs[0].Cells[3].State != "failed" {
		t.Fatalf("grid after marks = %+v, %v", g3.Runs, err)
	}

	dd, err := b.Console.DAG(ctx, viewer, "etl")
	if err != nil {
		t.Fatal(err)
	}
	if dd.Description != "nightly load" || !strings.Contains(dd.Source, "id: etl") || len(dd.Tasks) != 4 ||
		!slices.Equal(dd.Tasks[0].Downstream, []string{"transform"}) || dd.Timezone != "Asia/Seoul" {
		t.Errorf("DAG page = %+v", dd)
	}
	if dd.NextRunAt == nil || dd.NextRunAt.Location().String() != "Asia/Seoul" || dd.NextRunAt.Hour() != 3 {
		t.Errorf("next run = %v; want 03:00 Asia/Seoul", dd.NextRunAt)
	}
}

func TestBackfillAndCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	res, err := b.Console.Backfill(b.Ctx, owner, console.BackfillRequest{DagID: "etl", From: "2025-01-02", To: "2025-01-05", MaxActiveRuns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backfill == nil || res.Backfill.Total != 4 || res.Backfill.State != scheduler.BackfillRunning {
		t.Fatalf("backfill = %+v", res.Backfill)
	}
	bs, err := b.Console.Backfills(b.Ctx, viewer, "etl")
	if err != nil || len(bs) != 1 || bs[0].Considered < 1 {
		t.Fatalf("backfills = %+v, %v", bs, err)
	}
	_, err = b.Console.CancelBackfill(b.Ctx, viewer, res.Backfill.BackfillID, false)
	wantCode(t, err, console.CodeForbidden)
	if _, err := b.Console.CancelBackfill(b.Ctx, owner, res.Backfill.BackfillID, false); err != nil {
		t.Fatal(err)
	}
	_, err = b.Console.CancelBackfill(b.Ctx, owner, "nope", false)
	wantCode(t, err, console.CodeNotFound)
}

// The DAG list costs one query for the DAGs, one per 30 DAGs for their latest runs and, the
// first time a version is seen, one batched read of the versions: its reads are the
// documents it shows, not a query per DAG. Most DAGs here have no run, so a query per DAG
// would cost at least one billed read each.
func TestDAGListReadsAreBounded(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	b.Grant(t, viewer.Email, access.Viewer)
	const n = 50
	for i := range n {
		b.Deploy(t, fmt.Sprintf("id: d%02d\nowner: o@example.com\nschedule: \"@daily\"\nstart: 2025-01-01\ntasks:\n  - {id: t, type: shell, with: {command: \"true\"}}\n", i))
	}
	withRuns := 0
	for i := 0; i < n; i += 10 {
		b.Trigger(t, fmt.Sprintf("d%02d", i))
		b.Trigger(t, fmt.Sprintf("d%02d", i))
		withRuns++
	}
	reads0, _ := b.Store.Counts()
	page, err := b.Console.ListDAGs(b.Ctx, viewer, console.DAGQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	reads1, _ := b.Store.Counts()
	if len(page.DAGs) != n || len(page.DAGs[0].RecentRuns) != 2 || len(page.DAGs[1].RecentRuns) != 0 {
		t.Fatalf("got %d DAGs, first with %d runs", len(page.DAGs), len(page.DAGs[0].RecentRuns))
	}
	runQueries := (n + 29) / 30
	// role + DAGs + versions (cold) + runs shown + a billed read per run query that finds none
	bound := int64(1 + n + n + 2*withRuns + runQueries)
	if got := reads1 - reads0; got > bound {
		t.Errorf("DAG list of %d DAGs read %d documents; want at most %d", n, got, bound)
	}
	if _, err := b.Console.ListDAGs(b.Ctx, viewer, console.DAGQuery{Limit: 100}); err != nil {
		t.Fatal(err)
	}
	reads2, _ := b.Store.Counts()
	if got, warm := reads2-reads1, int64(1+n+2*withRuns+runQueries); got > warm {
		t.Errorf("warm DAG list read %d documents; want at most %d", got, warm)
	}

	// Once the engine keeps each DAG's latest runs on its document (engine.RebuildRecentRuns
	// once, then engine.NoteRun at each run transition), the list reads no runs at all.
	for i := 0; i < n; i++ {
		if err := b.Engine.RebuildRecentRuns(b.Ctx, fmt.Sprintf("d%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	r := b.Trigger(t, "d00")
	if err := b.Engine.NoteRun(b.Ctx, r.DagID, r.RunID); err != nil {
		t.Fatal(err)
	}
	reads3, _ := b.Store.Counts()
	kept, err := b.Console.ListDAGs(b.Ctx, viewer, console.DAGQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	reads4, _ := b.Store.Counts()
	if got := reads4 - reads3; got != int64(1+n) {
		t.Errorf("DAG list with kept runs read %d documents; want %d (the role and the DAGs)", got, 1+n)
	}
	if got := kept.DAGs[0].RecentRuns; len(got) != 3 || got[0].RunID != r.RunID || got[0].State != "running" ||
		got[1].RunID != page.DAGs[0].RecentRuns[0].RunID || len(kept.DAGs[1].RecentRuns) != 0 {
		t.Errorf("kept recent runs = %+v; queried ones = %+v", got, page.DAGs[0].RecentRuns)
	}
	t.Logf("DAG list of %d DAGs: %d reads cold, %d warm, %d with kept runs", n, reads1-reads0, reads2-reads1, reads4-reads3)

	// Pages: 50 DAGs by 20.
	var ids []string
	tok := ""
	for range 5 {
		p, err := b.Console.ListDAGs(b.Ctx, viewer, console.DAGQuery{Limit: 20, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.DAGs {
			ids = append(ids, d.DagID)
		}
		if tok = p.NextPageToken; tok == "" {
			break
		}
	}
	if len(ids) != n || ids[0] != "d00" || ids[n-1] != "d49" {
		t.Errorf("paged through %d DAGs: %v", len(ids), ids)
	}
	s, err := b.Console.ListDAGs(b.Ctx, viewer, console.DAGQuery{Search: "d1"})
	if err != nil || len(s.DAGs) != 10 {
		t.Errorf("search d1 = %d DAGs, %v", len(s.DAGs), err)
	}
}

// The grid costs the DAG, one query for its runs and one for their task instances.
func TestGridReadsAreBounded(t *testing.T) {
	t.Parallel()
	b := consoletest.New(t)
	b.Grant(t, viewer.Email, access.Viewer)
	const tasks, runs = 30, 5
	var src strings.Builder
	src.WriteString("id: wide\nowner: o@example.com\ntasks:\n")
	for i := range tasks {
		fmt.Fprintf(&src, "  - {id: t%02d, type: shell, with: {command: \"true\"}}\n", i)
	}
	b.Deploy(t, src.String())
	for range runs {
		b.Trigger(t, "wide")
	}
	reads0, _ := b.Store.Counts()
	g, err := b.Console.Grid(b.Ctx, viewer, "wide", console.GridQuery{})
	if err != nil {
		t.Fatal(err)
	}
	reads1, _ := b.Store.Counts()
	if len(g.Runs) != runs || len(g.Tasks) != tasks || g.Runs[0].Cells[tasks-1].State == "" {
		t.Fatalf("grid = %d runs × %d tasks", len(g.Runs), len(g.Tasks))
	}
	// role + DAG + runs + cells (the spec is cached by the engine)
	bound := int64(1 + 1 + runs + runs*tasks + 1)
	if got := reads1 - reads0; got > bound {
		t.Errorf("grid of %d tasks × %d runs read %d documents; want at most %d", tasks, runs, got, bound)
	}
	t.Logf("grid of %d tasks × %d runs: %d reads", tasks, runs, reads1-reads0)

	// Older runs page by page.
	g1, err := b.Console.Grid(b.Ctx, viewer, "wide", console.GridQuery{Runs: 3})
	if err != nil || len(g1.Runs) != 3 || g1.NextBefore == "" {
		t.Fatalf("grid page 1 = %+v, %v", g1, err)
	}
	g2, err := b.Console.Grid(b.Ctx, viewer, "wide", console.GridQuery{Runs: 3, Before: g1.NextBefore})
	if err != nil || len(g2.Runs) != 2 || g2.NextBefore != "" || g2.Runs[0].RunID == g1.Runs[2].RunID {
		t.Fatalf("grid page 2 = %+v, %v", g2, err)
	}
}

// A task that has not started has no instance document: the run's page still lists it,
// `none`, in the DAG's order, and its task page shows it `none` rather than "not found".
func TestTasksNotStartedShowAsNone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.Trigger(t, "etl")
	d, err := b.Console.Run(b.Ctx, viewer, "etl", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ti := range d.Tasks {
		got = append(got, ti.TaskID+"="+ti.State)
	}
	want := "extract=queued transform=none load=none report=queued"
	if strings.Join(got, " ") != want {
		t.Fatalf("run page tasks: %v; want %s", got, want)
	}
	td, err := b.Console.Task(b.Ctx, viewer, "etl", r.RunID, "load")
	if err != nil {
		t.Fatalf("task page of a task not started: %v", err)
	}
	if td.Instance.State != "none" || td.Instance.Type != "shell" || len(td.Attempts) != 0 {
		t.Fatalf("task page: %+v with %d attempts; want load, shell, none, no attempts", td.Instance, len(td.Attempts))
	}
	_, err = b.Console.Task(b.Ctx, viewer, "etl", r.RunID, "nope")
	wantCode(t, err, console.CodeNotFound)
}
