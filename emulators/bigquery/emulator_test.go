package bqemu

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

const testProject = "bqemu-test"

// emu is the emulator the package's tests share (one project; a dataset per test).
var emu *Emulator

func TestMain(m *testing.M) {
	ctx := context.Background()
	e, err := Start(ctx, testProject, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	emu = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

var datasetSeq atomic.Int64

// setup returns a client on the shared emulator (through its front, as Updraft's code talks
// to it) and a new dataset for the test.
func setup(t *testing.T) (*bigquery.Client, *bigquery.Dataset) {
	return setupAt(t, emu.Host)
}

// setupRaw is setup on the emulator's own endpoint, without the front: the tests that pin
// what the emulator itself does use it.
func setupRaw(t *testing.T) (*bigquery.Client, *bigquery.Dataset) {
	return setupAt(t, emu.RawHost)
}

func setupAt(t *testing.T, host string) (*bigquery.Client, *bigquery.Dataset) {
	t.Helper()
	ctx := context.Background()
	c, err := bigquery.NewClient(ctx, testProject, option.WithEndpoint("http://"+host), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ds := c.Dataset(fmt.Sprintf("t%d_%d", os.Getpid(), datasetSeq.Add(1)))
	if err := ds.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return c, ds
}

// runJob runs a statement as a job with the given config and waits for it.
func runJob(t *testing.T, c *bigquery.Client, sql string, conf func(q *bigquery.Query)) (*bigquery.Job, error) {
	t.Helper()
	ctx := context.Background()
	q := c.Query(sql)
	if conf != nil {
		conf(q)
	}
	job, err := q.Run(ctx)
	if err != nil {
		return nil, err
	}
	st, err := job.Wait(ctx)
	if err != nil {
		return job, err
	}
	return job, st.Err()
}

func mustExec(t *testing.T, c *bigquery.Client, sql string) {
	t.Helper()
	if _, err := runJob(t, c, sql, nil); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, c *bigquery.Client, table string) int64 {
	t.Helper()
	it, err := c.Query("SELECT COUNT(*) FROM " + table).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil {
		t.Fatal(err)
	}
	return row[0].(int64)
}

func TestStartServesOneProject(t *testing.T) {
	t.Parallel()
	c, ds := setup(t)
	ctx := context.Background()
	it, err := c.Query("SELECT 1 AS one, 'a' AS s").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]bigquery.Value
	if err := it.Next(&row); err != nil || row["one"] != int64(1) || row["s"] != "a" {
		t.Fatalf("SELECT 1: %v %v", row, err)
	}
	if _, err := ds.Metadata(ctx); err != nil {
		t.Fatal(err)
	}

	other, err := bigquery.NewClient(ctx, "some-other-project", emu.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = other.Dataset("x").Create(ctx, nil)
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusNotFound || !strings.Contains(ge.Message, "project some-other-project is not found") {
		t.Fatalf("another project: %v; want 404 project not found", err)
	}
	if emu.GRPCHost == "" || !strings.HasPrefix(emu.Host, "127.0.0.1:") {
		t.Errorf("hosts %q %q", emu.Host, emu.GRPCHost)
	}
}

func TestStopIsIdempotentAndKillsTheGroup(t *testing.T) {
	t.Parallel()
	e, err := Start(context.Background(), "bqemu-stop", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pid := e.PID()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	<-e.Done()
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d still there: %v", pid, err)
	}
	if log, err := os.ReadFile(e.LogPath); err != nil || !strings.Contains(string(log), "REST server listening at") {
		t.Fatalf("log %s: %q %v", e.LogPath, log, err)
	}
}

func TestEnsureBuiltReusesTheCache(t *testing.T) {
	t.Parallel()
	a, err := EnsureBuilt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := BinaryPath()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(BinaryEnv) == "" && a != b {
		t.Fatalf("EnsureBuilt %s, BinaryPath %s", a, b)
	}
}

// The tests below pin what the emulator does, so that a change in a new
// version shows up here rather than as a puzzle in a task test.

func TestMergeIsIdempotent(t *testing.T) {
	t.Parallel()
	c, ds := setup(t)
	tbl := "`" + ds.DatasetID + ".target`"
	src := "`" + ds.DatasetID + ".staging`"
	mustExec(t, c, "CREATE TABLE "+tbl+" (id INT64, v STRING)")
	mustExec(t, c, "CREATE TABLE "+src+" (id INT64, v STRING)")
	mustExec(t, c, "INSERT INTO "+src+" (id, v) VALUES (1, 'a'), (2, 'b')")
	merge := "MERGE " + tbl + " T USING " + src + ` S ON T.id = S.id
		WHEN MATCHED THEN UPDATE SET v = S.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (S.id, S.v)`
	mustExec(t, c, merge)
	mustExec(t, c, merge)
	if n := count(t, c, tbl); n != 2 {
		t.Fatalf("after the same MERGE twice: %d rows, want 2", n)
	}
	// BigQuery takes a subquery as the source; the emulator only a table.
	_, err := runJob(t, c, "MERGE "+tbl+` T USING (SELECT 3 AS id, 'c' AS v) S ON T.id = S.id
		WHEN NOT MATCHED THEN INSERT (id, v) VALUES (S.id, S.v)`, nil)
	if err == nil || !strings.Contains(err.Error(), "single-table reference") {
		t.Fatalf("MERGE from a subquery: %v; the emulator used to reject it", err)
	}
}

func TestQueryDestinationTable(t *testing.T) {
	t.Parallel()
	c, ds := setupRaw(t)
	dst := ds.Table("dst")
	into := func(wd bigquery.TableWriteDisposition) func(q *bigquery.Query) {
		return func(q *bigquery.Query) { q.Dst, q.WriteDisposition = dst, wd }
	}
	sql := "SELECT 1 AS id UNION ALL SELECT 2"
	if _, err := runJob(t, c, sql, into(bigquery.WriteTruncate)); err != nil {
		t.Fatal(err)
	}
	name := "`" + ds.DatasetID + ".dst`"
	if n := count(t, c, name); n != 2 {
		t.Fatalf("destination created with %d rows, want 2", n)
	}
	if _, err := runJob(t, c, sql, into(bigquery.WriteTruncate)); err != nil {
		t.Fatal(err)
	}
	// BigQuery would leave 2 rows: the emulator ignores a query job's write
	// disposition and appends.
	if n := count(t, c, name); n != 4 {
		t.Fatalf("WRITE_TRUNCATE again: %d rows; the emulator used to append (4)", n)
	}
	if _, err := runJob(t, c, sql, into(bigquery.WriteEmpty)); err != nil {
		t.Fatalf("WRITE_EMPTY into a full table: %v (the emulator used to append)", err)
	}
	if n := count(t, c, name); n != 6 {
		t.Fatalf("WRITE_EMPTY: %d rows; the emulator used to append (6)", n)
	}
}

func TestJobIDs(t *testing.T) {
	t.Parallel()
	c, ds := setupRaw(t)
	ctx := context.Background()
	tbl := "`" + ds.DatasetID + ".n`"
	mustExec(t, c, "CREATE TABLE "+tbl+" (id INT64)")
	id := "job_" + ds.DatasetID
	withID := func(q *bigquery.Query) { q.JobID = id; q.Labels = map[string]string{"updraft_dag": "d"} }
	if _, err := runJob(t, c, "INSERT INTO "+tbl+" VALUES (1)", withID); err != nil {
		t.Fatal(err)
	}
	_, err := runJob(t, c, "INSERT INTO "+tbl+" VALUES (1)", withID)
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusBadRequest || !strings.Contains(ge.Message, "already created") {
		t.Fatalf("the same job id again: %v; the emulator used to answer 400 'already created' (BigQuery: 409)", err)
	}
	if n := count(t, c, tbl); n != 1 {
		t.Fatalf("the rejected duplicate job changed the table: %d rows", n)
	}
	job, err := c.JobFromID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	st := job.LastStatus()
	if st.State != bigquery.Done || st.Err() != nil {
		t.Fatalf("jobs.get: %+v", st)
	}
	cfg, err := job.Config()
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := cfg.(*bigquery.QueryConfig); !ok || q.Labels["updraft_dag"] != "d" {
		t.Fatalf("job config %#v", cfg)
	}
	if _, err := c.JobFromID(ctx, "no_such_job"); err == nil {
		t.Fatal("jobs.get of a missing job succeeded")
	}
	if err := job.Cancel(ctx); err != nil {
		t.Fatalf("jobs.cancel: %v", err)
	}
}

func TestQueryErrorsAndParameters(t *testing.T) {
	t.Parallel()
	c, _ := setup(t)
	ctx := context.Background()
	job, err := runJob(t, c, "SELECT foo FROM UNNEST([1]) AS x", nil)
	// Waiting reports the failure as getQueryResults' HTTP error; the job's
	// status holds the same message. BigQuery's reason would be invalidQuery,
	// with location "query".
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusBadRequest || len(ge.Errors) != 1 ||
		ge.Errors[0].Reason != "jobInternalError" || !strings.Contains(ge.Message, "Unrecognized name: foo [at 1:8]") {
		t.Fatalf("a bad query: %#v", err)
	}
	// The jobs.insert answer carries the error in the job's status...
	var be *bigquery.Error
	if st := job.LastStatus(); st.State != bigquery.Done || !errors.As(st.Err(), &be) ||
		be.Reason != "jobInternalError" || be.Location != "" || !strings.Contains(be.Message, "Unrecognized name: foo") {
		t.Fatalf("the failed job's status from jobs.insert: %+v", st)
	}
	// ...but jobs.get drops it: the job reads DONE without an error.
	st, err := job.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Err() != nil {
		t.Logf("jobs.get now reports the job's error: %v (update the docs)", st.Err())
	}

	q := c.Query("SELECT @n + 1 AS n, @s AS s")
	q.Parameters = []bigquery.QueryParameter{{Name: "n", Value: 41}, {Name: "s", Value: "x"}}
	it, err := q.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]bigquery.Value
	if err := it.Next(&row); err != nil || row["n"] != int64(42) || row["s"] != "x" {
		t.Fatalf("parameters: %v %v", row, err)
	}
	if err := it.Next(&row); err != iterator.Done {
		t.Fatalf("a second row: %v", err)
	}
	_, err = runJob(t, c, "SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS", nil)
	if err == nil {
		t.Fatal("INFORMATION_SCHEMA.JOBS worked: update the docs")
	}
	t.Logf("INFORMATION_SCHEMA.JOBS: %v", err)
}

func TestPartitionDecoratorIsPartOfTheName(t *testing.T) {
	t.Parallel()
	c, ds := setup(t)
	ctx := context.Background()
	// BigQuery would replace one partition of table p; the emulator makes a
	// table literally named "p$20250101".
	if _, err := runJob(t, c, "SELECT 1 AS id", func(q *bigquery.Query) {
		q.Dst, q.WriteDisposition = ds.Table("p$20250101"), bigquery.WriteTruncate
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Table("p$20250101").Metadata(ctx); err != nil {
		t.Fatalf("table p$20250101: %v", err)
	}
	if _, err := ds.Table("p").Metadata(ctx); err == nil {
		t.Fatal("table p exists: the emulator now understands partition decorators (update the docs)")
	}
}

// TestFrontGivesBigQuerysBehaviour: through the front (Emulator.Host), a query's write
// disposition is honoured, a duplicate job id is refused with 409, and a query of
// INFORMATION_SCHEMA.PARTITIONS is refused invalidQuery; the raw emulator does none of these
// (TestQueryDestinationTable, TestJobIDs).
func TestFrontGivesBigQuerysBehaviour(t *testing.T) {
	t.Parallel()
	c, ds := setup(t)
	dst := ds.Table("dst")
	into := func(wd bigquery.TableWriteDisposition) func(q *bigquery.Query) {
		return func(q *bigquery.Query) { q.Dst, q.WriteDisposition = dst, wd }
	}
	sql := "SELECT 1 AS id UNION ALL SELECT 2"
	name := "`" + ds.DatasetID + ".dst`"
	for i := 0; i < 2; i++ {
		if _, err := runJob(t, c, sql, into(bigquery.WriteTruncate)); err != nil {
			t.Fatal(err)
		}
		if n := count(t, c, name); n != 2 {
			t.Fatalf("WRITE_TRUNCATE #%d: %d rows, want 2 (the table replaced)", i+1, n)
		}
	}
	_, err := runJob(t, c, sql, into(bigquery.WriteEmpty))
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusConflict || !strings.Contains(ge.Message, "Already Exists: Table") {
		t.Fatalf("WRITE_EMPTY into a full table: %v; want 409 Already Exists: Table", err)
	}
	if n := count(t, c, name); n != 2 {
		t.Fatalf("the refused WRITE_EMPTY changed the table: %d rows", n)
	}
	if _, err := runJob(t, c, sql, func(q *bigquery.Query) { q.Dst, q.WriteDisposition = ds.Table("fresh"), bigquery.WriteEmpty }); err != nil {
		t.Fatalf("WRITE_EMPTY into a missing table: %v", err)
	}

	id := "job_front_" + ds.DatasetID
	withID := func(q *bigquery.Query) { q.JobID = id }
	if _, err := runJob(t, c, "SELECT 1", withID); err != nil {
		t.Fatal(err)
	}
	_, err = runJob(t, c, "SELECT 1", withID)
	if !errors.As(err, &ge) || ge.Code != http.StatusConflict || !strings.Contains(ge.Message, "Already Exists: Job") {
		t.Fatalf("the same job id again: %v; want 409 Already Exists: Job", err)
	}

	_, err = c.Query("SELECT COUNT(*) FROM `" + testProject + "." + ds.DatasetID + ".INFORMATION_SCHEMA.PARTITIONS`").Read(context.Background())
	if !errors.As(err, &ge) || ge.Code != http.StatusBadRequest || len(ge.Errors) == 0 || ge.Errors[0].Reason != "invalidQuery" ||
		!strings.Contains(ge.Message, "needs real BigQuery") {
		t.Fatalf("INFORMATION_SCHEMA.PARTITIONS: %v; want 400 invalidQuery saying it needs real BigQuery", err)
	}
}
