package bq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/bigquery"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// The BigQuery tests share one emulator, started on first use (so that the other tests of the
// package never wait for its one-time build) and stopped by TestMain; each test gets its own
// dataset, since the emulator serves a single project.
const bqProject = "updraft-tasks-test"

var (
	bqOnce sync.Once
	bqEmu  *bqemu.Emulator
	bqErr  error
	bqSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	proctree.Init() // this test binary supervises the shell tasks it runs
	code := m.Run()
	if bqEmu != nil {
		if err := bqEmu.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

type bqSetup struct {
	client  *bigquery.Client
	dataset string
	env     map[string]string
}

func setupBigQuery(t *testing.T) *bqSetup {
	t.Helper()
	bqOnce.Do(func() { bqEmu, bqErr = bqemu.Start(context.Background(), bqProject, "") })
	if bqErr != nil {
		t.Fatal(bqErr)
	}
	ctx := context.Background()
	c, err := bigquery.NewClient(ctx, bqProject, bqEmu.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ds := fmt.Sprintf("tasks_%d_%d", os.Getpid(), bqSeq.Add(1))
	if err := c.Dataset(ds).Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return &bqSetup{client: c, dataset: ds, env: map[string]string{
		"GOOGLE_CLOUD_PROJECT": bqProject, bqemu.EnvVar: bqEmu.Host,
	}}
}

// run runs the type for one attempt and returns its result, its log and its XCom decoded.
func (s *bqSetup) run(t *testing.T, attemptID string, args map[string]any) (res resultView) {
	t.Helper()
	return s.runCtx(t, context.Background(), attemptID, args)
}

type resultView struct {
	State scheduler.AttemptState
	Error string
	Final bool
	XCom  map[string]any
	Log   string
}

func (s *bqSetup) runCtx(t *testing.T, ctx context.Context, attemptID string, args map[string]any) resultView {
	t.Helper()
	ref := scheduler.AttemptRef{DagID: "orders.daily", RunID: "scheduled__2025-01-01T00:00:00+09:00", TaskID: "Load_Orders", TryNumber: 1, AttemptID: attemptID}
	var buf bytes.Buffer
	log, err := tasks.NewLogger(&buf, "", ref)
	if err != nil {
		t.Fatal(err)
	}
	tc := &taskrun.Context{Ref: ref, Args: args, Log: log, Getenv: func(k string) string { return s.env[k] }}
	res := BigQueryQuery().Run(ctx, tc)
	v := resultView{State: res.State, Error: res.Error, Final: res.Final, Log: buf.String()}
	if len(res.XCom) > 0 {
		if err := json.Unmarshal(res.XCom, &v.XCom); err != nil {
			t.Fatalf("XCom %s: %v", res.XCom, err)
		}
	}
	return v
}

func (s *bqSetup) table(name string) string { return "`" + s.dataset + "." + name + "`" }

func (s *bqSetup) exec(t *testing.T, sql string) {
	t.Helper()
	ctx := context.Background()
	job, err := s.client.Query(sql).Run(ctx)
	if err == nil {
		var st *bigquery.JobStatus
		if st, err = job.Wait(ctx); err == nil {
			err = st.Err()
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (s *bqSetup) count(t *testing.T, table string) int64 {
	t.Helper()
	it, err := s.client.Query("SELECT COUNT(*) FROM " + s.table(table)).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatal(err)
	}
	return row[0].(int64)
}

func mustSucceed(t *testing.T, what string, r resultView) {
	t.Helper()
	if r.State != scheduler.AttemptSuccess {
		t.Fatalf("%s: %s: %s\nlog:\n%s", what, r.State, r.Error, r.Log)
	}
}

func TestBigQueryRowsToXCom(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	s.exec(t, "CREATE TABLE "+s.table("orders")+" (id INT64, amount NUMERIC, day DATE)")
	s.exec(t, "INSERT INTO "+s.table("orders")+` (id, amount, day) VALUES
		(1, 1.5, '2025-01-01'), (2, 2.25, '2025-01-01'), (3, 3, '2025-01-02'), (4, 4, '2025-01-02'), (5, 5, '2025-01-03')`)
	sql := "SELECT id, amount, day FROM " + s.table("orders") + " WHERE id >= @min AND day >= @from ORDER BY id"
	from := map[string]any{"type": "date", "value": "2025-01-01"}

	r := s.run(t, "rows-all", map[string]any{"sql": sql, "params": map[string]any{"min": 1, "from": from},
		"labels": map[string]any{"team": "data"}})
	mustSucceed(t, "all rows", r)
	got, _ := json.Marshal(r.XCom["rows"])
	want := `[{"amount":1.5,"day":"2025-01-01","id":1},{"amount":2.25,"day":"2025-01-01","id":2},{"amount":3,"day":"2025-01-02","id":3},{"amount":4,"day":"2025-01-02","id":4},{"amount":5,"day":"2025-01-03","id":5}]`
	if string(got) != want || r.XCom["total_rows"] != 5.0 || r.XCom["truncated"] != false || r.XCom["job_id"] != "updraft_rows-all" {
		t.Fatalf("XCom %v\nrows %s\nwant %s", r.XCom, got, want)
	}
	if !strings.Contains(r.Log, "started job updraft_rows-all: https://console.cloud.google.com/bigquery?project="+bqProject) {
		t.Errorf("log does not name the job and its console link:\n%s", r.Log)
	}

	r = s.run(t, "rows-max", map[string]any{"sql": sql, "params": map[string]any{"min": 2, "from": from}, "max_rows": "2"})
	mustSucceed(t, "max_rows 2", r)
	got, _ = json.Marshal(r.XCom["rows"])
	if string(got) != `[{"amount":2.25,"day":"2025-01-01","id":2},{"amount":3,"day":"2025-01-02","id":3}]` ||
		r.XCom["total_rows"] != 4.0 || r.XCom["truncated"] != true {
		t.Fatalf("truncated XCom %v %s", r.XCom, got)
	}
	if !strings.Contains(r.Log, "returned 4 rows; XCom keeps the first 2") {
		t.Errorf("the log does not say the rows were truncated:\n%s", r.Log)
	}

	job, err := s.client.JobFromID(context.Background(), "updraft_rows-all")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := job.Config()
	if err != nil {
		t.Fatal(err)
	}
	labels := cfg.(*bigquery.QueryConfig).Labels
	wantLabels := map[string]string{"team": "data", "updraft_dag": "orders_daily", "updraft_task": "load_orders",
		"updraft_run": "scheduled__2025-01-01t00_00_00_09_00"}
	if fmt.Sprint(labels) != fmt.Sprint(wantLabels) {
		t.Errorf("job labels %v, want %v", labels, wantLabels)
	}
}

func TestBigQueryValueTypesInXCom(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	r := s.run(t, "types", map[string]any{"sql": `SELECT 1 AS i, 2.5 AS f, TRUE AS b, 'x' AS s, NUMERIC '1.10' AS n,
		DATE '2025-01-01' AS d, TIMESTAMP '2025-01-01 09:00:00+09' AS ts, CAST(NULL AS STRING) AS z,
		[1, 2] AS arr, STRUCT(1 AS x, 'y' AS y) AS st, @when AS p, DATE_ADD(@day, INTERVAL 1 DAY) AS next`,
		"params": map[string]any{"when": "2025-01-01", "day": map[string]any{"type": "DATE", "value": "2025-01-31"}}})
	mustSucceed(t, "types", r)
	got, _ := json.Marshal(r.XCom["rows"])
	want := `[{"arr":[1,2],"b":true,"d":"2025-01-01","f":2.5,"i":1,"n":1.1,"next":"2025-02-01","p":"2025-01-01","s":"x","st":{"x":1,"y":"y"},"ts":"2025-01-01T00:00:00Z","z":null}]`
	if string(got) != want {
		t.Fatalf("rows %s\nwant %s", got, want)
	}
}

func TestBigQueryDestinationWrites(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	s.exec(t, "CREATE TABLE "+s.table("src")+" (id INT64)")
	s.exec(t, "INSERT INTO "+s.table("src")+" (id) VALUES (1), (2), (3)")
	load := func(attempt, write string) resultView {
		return s.run(t, attempt, map[string]any{"sql": "SELECT id FROM " + s.table("src"),
			"destination": s.dataset + ".out", "write": write})
	}
	r := load("trunc-1", "truncate")
	mustSucceed(t, "truncate into a new table", r)
	if r.XCom["destination"] != bqProject+"."+s.dataset+".out" || r.XCom["job_id"] != "updraft_trunc-1" || r.XCom["rows"] != nil {
		t.Fatalf("XCom %v", r.XCom)
	}
	if _, ok := r.XCom["total_bytes_processed"].(float64); !ok {
		t.Errorf("XCom has no total_bytes_processed: %v", r.XCom)
	}
	mustSucceed(t, "truncate again", load("trunc-2", "truncate"))
	if n := s.count(t, "out"); n != 3 {
		t.Fatalf("after two truncate loads: %d rows, want one copy (3)", n)
	}
	mustSucceed(t, "append", load("append-1", "append"))
	if n := s.count(t, "out"); n != 6 {
		t.Fatalf("after an append: %d rows, want 6", n)
	}
	r = load("empty-1", "empty")
	if r.State != scheduler.AttemptFailed || !strings.Contains(r.Error, "Already Exists") {
		t.Fatalf("write empty into a full table: %+v", r)
	}
	r = s.run(t, "empty-2", map[string]any{"sql": "SELECT id FROM " + s.table("src"), "destination": bqProject + "." + s.dataset + ".fresh"})
	mustSucceed(t, "write empty (the default) into a new table", r)
	if n := s.count(t, "fresh"); n != 3 {
		t.Fatalf("fresh table: %d rows", n)
	}
}

func TestBigQueryMergeIsIdempotent(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	s.exec(t, "CREATE TABLE "+s.table("customers")+" (id INT64, name STRING)")
	s.exec(t, "CREATE TABLE "+s.table("staging")+" (id INT64, name STRING)")
	s.exec(t, "INSERT INTO "+s.table("staging")+" (id, name) VALUES (1, 'ada'), (2, 'bob')")
	merge := "MERGE " + s.table("customers") + " T USING " + s.table("staging") + ` S ON T.id = S.id
		WHEN MATCHED THEN UPDATE SET name = S.name
		WHEN NOT MATCHED THEN INSERT (id, name) VALUES (S.id, S.name)`
	for _, attempt := range []string{"merge-1", "merge-2"} {
		mustSucceed(t, attempt, s.run(t, attempt, map[string]any{"sql": merge}))
	}
	if n := s.count(t, "customers"); n != 2 {
		t.Fatalf("after the same MERGE twice: %d rows, want 2", n)
	}
}

func TestBigQuerySameAttemptReattachesToItsJob(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	s.exec(t, "CREATE TABLE "+s.table("counter")+" (n INT64)")
	insert := map[string]any{"sql": "INSERT INTO " + s.table("counter") + " (n) VALUES (1)"}
	first := s.run(t, "attempt/7", insert)
	mustSucceed(t, "first delivery", first)
	again := s.run(t, "attempt/7", insert)
	mustSucceed(t, "redelivery", again)
	if n := s.count(t, "counter"); n != 1 {
		t.Fatalf("the redelivered attempt ran its job again: %d rows", n)
	}
	if first.XCom["job_id"] != "updraft_attempt_7" || again.XCom["job_id"] != first.XCom["job_id"] {
		t.Fatalf("job ids %v and %v", first.XCom["job_id"], again.XCom["job_id"])
	}
	if !strings.Contains(again.Log, "re-attached to job updraft_attempt_7") {
		t.Errorf("the redelivery does not say it re-attached:\n%s", again.Log)
	}
	if n := s.count(t, "counter"); n != 1 {
		t.Fatalf("counter %d", n)
	}

	// A destination load re-attaches too: no second append, no second truncate.
	load := map[string]any{"sql": "SELECT n FROM " + s.table("counter"), "destination": s.dataset + ".copy", "write": "append"}
	mustSucceed(t, "load", s.run(t, "load-1", load))
	r := s.run(t, "load-1", load)
	mustSucceed(t, "load redelivered", r)
	if n := s.count(t, "copy"); n != 1 || !strings.Contains(r.Log, "re-attached") {
		t.Fatalf("a redelivered append load: %d rows (want 1)\n%s", n, r.Log)
	}
}

func TestBigQueryErrorsSurface(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	s.exec(t, "CREATE TABLE "+s.table("t")+" (id INT64)")
	r := s.run(t, "bad-sql", map[string]any{"sql": "SELECT id,\n  foo\nFROM " + s.table("t")})
	if r.State != scheduler.AttemptFailed || r.Final ||
		!strings.Contains(r.Error, "job updraft_bad-sql failed") || !strings.Contains(r.Error, "Unrecognized name: foo [at 2:3]") ||
		!strings.Contains(r.Error, "reason jobInternalError") {
		t.Fatalf("a SQL error: %+v", r)
	}

	r = s.run(t, "no-table", map[string]any{"sql": "SELECT * FROM " + s.table("missing")})
	if r.State != scheduler.AttemptFailed || !strings.Contains(r.Error, "missing") {
		t.Fatalf("a missing table: %+v", r)
	}

	delete(s.env, "GOOGLE_CLOUD_PROJECT")
	r = s.run(t, "no-project", map[string]any{"sql": "SELECT 1"})
	if r.State != scheduler.AttemptFailed || !r.Final || !strings.Contains(r.Error, "GOOGLE_CLOUD_PROJECT") {
		t.Fatalf("no project: %+v", r)
	}
	r = s.run(t, "other-project", map[string]any{"sql": "SELECT 1", "project": "not-the-emulators"})
	if r.State != scheduler.AttemptFailed || !strings.Contains(r.Error, "project not-the-emulators is not found") {
		t.Fatalf("another project on the emulator: %+v", r)
	}
}

func TestBigQueryStopsWithItsContext(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := s.runCtx(t, ctx, "cancelled", map[string]any{"sql": "SELECT 1"})
	if r.State != scheduler.AttemptFailed || !strings.Contains(r.Error, "context canceled") {
		t.Fatalf("a cancelled context: %+v", r)
	}
}

func TestBigQueryCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{}, "sql"},
		{map[string]any{"sql": "  "}, "sql"},
		{map[string]any{"sql": 1}, "sql"},
		{map[string]any{"sql": "x", "destination": "d.t", "write": "overwrite"}, "write"},
		{map[string]any{"sql": "x", "write": "truncate"}, "write"},
		{map[string]any{"sql": "x", "max_rows": 20000}, "max_rows"},
		{map[string]any{"sql": "x", "max_rows": -1}, "max_rows"},
		{map[string]any{"sql": "x", "max_rows": "many"}, "max_rows"},
		{map[string]any{"sql": "x", "max_rows": 1.5}, "max_rows"},
		{map[string]any{"sql": "x", "destination": "just_a_table"}, "destination"},
		{map[string]any{"sql": "x", "destination": "a.b.c.d"}, "destination"},
		{map[string]any{"sql": "x", "location": 5}, "location"},
		{map[string]any{"sql": "x", "labels": "team=data"}, "labels"},
		{map[string]any{"sql": "x", "labels": map[string]any{"Team": "data"}}, "labels.Team"},
		{map[string]any{"sql": "x", "labels": map[string]any{"team": "Data Eng"}}, "labels.team"},
		{map[string]any{"sql": "x", "params": []any{1}}, "params"},
		{map[string]any{"sql": "x", "params": map[string]any{"1day": "x"}}, "params.1day"},
		{map[string]any{"sql": "x", "params": map[string]any{"day": nil}}, "params.day"},
		{map[string]any{"sql": "x", "params": map[string]any{"ids": []any{1, "a"}}}, "params.ids"},
		{map[string]any{"sql": "x", "params": map[string]any{"day": map[string]any{"type": "DAY", "value": "x"}}}, "params.day"},
		{map[string]any{"sql": "x", "params": map[string]any{"day": map[string]any{"type": "DATE"}}}, "params.day"},
		{map[string]any{"sql": "x", "params": map[string]any{"day": map[string]any{"value": "x"}}}, "params.day"},
		{map[string]any{"sql": "x", "query": "SELECT 1"}, "query"},
	}
	check := BigQueryQuery().Check
	for _, c := range cases {
		ps := check(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	ok := map[string]any{
		"sql":         "SELECT * FROM `{{ .params.dataset }}.orders` WHERE day = @day",
		"project":     "{{ var \"project\" }}",
		"location":    "asia-northeast3",
		"destination": "{{ .params.dataset }}.orders_{{ .ds_nodash }}",
		"write":       "{{ .params.write }}",
		"max_rows":    "{{ .params.n }}",
		"labels":      map[string]any{"team": "data", "day": "{{ .ds }}"},
		"params": map[string]any{"day": "{{ .ds }}", "ids": []any{1, 2}, "min": 1.5, "on": true,
			"d": map[string]any{"type": "DATE", "value": "{{ .ds }}"}, "t": map[string]any{"type": "{{ .params.t }}", "value": 1}},
	}
	if ps := check(ok); len(ps) != 0 {
		t.Errorf("templated and valid arguments flagged: %+v", ps)
	}
	for _, d := range []string{"ds.t", "p.ds.t", "p:ds.t", "`p.ds.t`", "ds.t$20250101"} {
		if ps := check(map[string]any{"sql": "x", "destination": d, "write": "truncate"}); len(ps) != 0 {
			t.Errorf("destination %q flagged: %+v", d, ps)
		}
	}
}

func TestBigQueryNames(t *testing.T) {
	t.Parallel()
	if got := jobID("01J/ab.c:d"); got != "updraft_01J_ab_c_d" {
		t.Errorf("jobID: %q", got)
	}
	if got := labelValueOf("manual__2025-01-01T00:00:00+00:00"); got != "manual__2025-01-01t00_00_00_00_00" {
		t.Errorf("label value: %q", got)
	}
	if got := labelValueOf(strings.Repeat("x", 100)); len(got) != 63 {
		t.Errorf("label value length %d", len(got))
	}
	ref, err := parseTableRef("p:ds.t$20250101")
	if err != nil || ref != (tableRef{"p", "ds", "t$20250101"}) {
		t.Errorf("parseTableRef: %+v %v", ref, err)
	}
}
