package bq

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun/taskruntest"

	"cloud.google.com/go/bigquery"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// pokeTable runs one poke of a sensor.bigquery_table task with env as its environment.
func pokeTable(t *testing.T, env map[string]string, args map[string]any) (engine.Result, string) {
	t.Helper()
	now := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	tc, log := taskruntest.DeferredContext(t, env, nil, 1, "a1", &dag.Task{ID: "wait"}, args)
	tc.Job, tc.DAG = nil, &dag.DAG{ID: "orders", Timezone: "UTC"}
	tc.Run = scheduler.Run{DagID: "orders", IntervalStart: now.Add(-24 * time.Hour), IntervalEnd: now, LogicalDate: now.Add(-24 * time.Hour)}
	tc.Now = func() time.Time { return now }
	return SensorBigQueryTable().Run(context.Background(), tc), taskruntest.LogMessages(t, log.String())
}

func TestSensorBigQueryTableAppears(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	args := map[string]any{"dataset": s.dataset, "table": "orders_20250101"}

	res, log := pokeTable(t, s.env, args)
	if res.State != scheduler.AttemptReschedule || res.Final || res.RescheduleAt != nil {
		t.Fatalf("before the table exists: %+v\n%s", res, log)
	}
	if !strings.Contains(log, "table "+bqProject+"."+s.dataset+".orders_20250101 does not exist: not yet") {
		t.Errorf("the log does not say which table is missing:\n%s", log)
	}

	missingDataset := map[string]any{"project": bqProject, "dataset": s.dataset + "_later", "table": "orders"}
	if res, log := pokeTable(t, s.env, missingDataset); res.State != scheduler.AttemptReschedule {
		t.Errorf("a dataset that does not exist yet: %+v\n%s", res, log)
	}

	s.exec(t, "CREATE TABLE "+s.table("orders_20250101")+" (id INT64)")
	s.exec(t, "INSERT INTO "+s.table("orders_20250101")+" (id) VALUES (1), (2)")
	res, log = pokeTable(t, s.env, args)
	if res.State != scheduler.AttemptSuccess {
		t.Fatalf("after the table was created: %+v\n%s", res, log)
	}
	var x map[string]any
	if err := json.Unmarshal(res.XCom, &x); err != nil {
		t.Fatalf("XCom %s: %v", res.XCom, err)
	}
	if x["table"] != bqProject+"."+s.dataset+".orders_20250101" {
		t.Errorf("XCom %s does not name the table", res.XCom)
	}
}

// The emulator has no INFORMATION_SCHEMA.PARTITIONS: a partition sensor waits for its table
// there, then says plainly that the partition check needs BigQuery (its front answers the
// query invalidQuery, as BigQuery refuses a query; the sensor has no emulator case).
func TestSensorBigQueryPartitionOnTheEmulator(t *testing.T) {
	t.Parallel()
	s := setupBigQuery(t)
	args := map[string]any{"dataset": s.dataset, "table": "events", "partition": int64(20250101)}
	if res, log := pokeTable(t, s.env, args); res.State != scheduler.AttemptReschedule {
		t.Fatalf("before the table exists: %+v\n%s", res, log)
	}
	s.exec(t, "CREATE TABLE "+s.table("events")+" (id INT64, day DATE) PARTITION BY day")
	res, _ := pokeTable(t, s.env, args)
	if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, "needs real BigQuery") {
		t.Errorf("%+v; want a final failure saying the emulator cannot check partitions", res)
	}
}

// A BigQuery error other than not found is a failed poke, which the retry policy handles. The
// emulator answers everything it knows; this stand-in answers 403 as BigQuery does when the
// worker's service account lacks bigquery.tables.get.
func TestSensorBigQueryTableOtherErrorsFailThePoke(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error": {"code": 403, "message": "Access Denied: Table p:d.t: Permission bigquery.tables.get denied",
			"errors": [{"message": "Access Denied: Table p:d.t: Permission bigquery.tables.get denied", "reason": "accessDenied"}], "status": "PERMISSION_DENIED"}}`))
	}))
	defer srv.Close()
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "updraft-denied", bqemu.EnvVar: srv.URL}
	res, _ := pokeTable(t, env, map[string]any{"dataset": "d", "table": "t"})
	if res.State != scheduler.AttemptFailed || res.Final || !strings.Contains(res.Error, "reading table updraft-denied.d.t") ||
		!strings.Contains(res.Error, "Permission bigquery.tables.get denied") {
		t.Errorf("403: %+v; want a failed poke (not final) naming the table and BigQuery's message", res)
	}
}

func TestSensorBigQueryPartitionQuery(t *testing.T) {
	t.Parallel()
	sql, params := partitionQuery("my-project", "staging", "orders", "2025010112")
	want := "SELECT COUNT(*) FROM `my-project.staging.INFORMATION_SCHEMA.PARTITIONS` WHERE table_name = @table AND partition_id = @partition AND total_rows > 0"
	if sql != want {
		t.Errorf("SQL\n%s\nwant\n%s", sql, want)
	}
	wantParams := []bigquery.QueryParameter{{Name: "table", Value: "orders"}, {Name: "partition", Value: "2025010112"}}
	if !reflect.DeepEqual(params, wantParams) {
		t.Errorf("params %+v, want %+v", params, wantParams)
	}
}

func TestSensorBigQueryTableBadArgsAreFinal(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "updraft-test", bqemu.EnvVar: "127.0.0.1:9"}
	cases := []struct {
		env  map[string]string
		args map[string]any
		want string
	}{
		{env, map[string]any{"table": "t"}, "with.dataset and with.table are required"},
		{map[string]string{}, map[string]any{"dataset": "d", "table": "t"}, "no project"},
		{env, map[string]any{"dataset": "d-1", "table": "t"}, `dataset "d-1"`},
		{env, map[string]any{"dataset": "d", "table": "t$20250101"}, "with.partition"},
		{env, map[string]any{"dataset": "d", "table": "t", "partition": "2025-01-01"}, `partition "2025-01-01"`},
		{env, map[string]any{"project": "p`; DROP", "dataset": "d", "table": "t", "partition": "20250101"}, "not a project id"},
		{env, map[string]any{"dataset": "d", "table": []any{"t"}}, "with.table must be a string"},
	}
	for _, c := range cases {
		res, _ := pokeTable(t, c.env, c.args)
		if res.State != scheduler.AttemptFailed || !res.Final || !strings.Contains(res.Error, c.want) {
			t.Errorf("%v: %s final=%v %q; want a final failure saying %q", c.args, res.State, res.Final, res.Error, c.want)
		}
	}
}

func TestSensorBigQueryTableCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		with map[string]any
		arg  string
	}{
		{map[string]any{"table": "t"}, "dataset"},
		{map[string]any{"dataset": "d"}, "table"},
		{map[string]any{"dataset": "d", "table": "t", "partiton": "20250101"}, "partiton"},
		{map[string]any{"dataset": "staging.orders", "table": "t"}, "dataset"},
		{map[string]any{"dataset": "d", "table": "p.d.t"}, "table"},
		{map[string]any{"dataset": "d", "table": "t", "partition": "2025-01-01"}, "partition"},
		{map[string]any{"dataset": "d", "table": "t", "project": "My Project"}, "project"},
		{map[string]any{"dataset": "d", "table": "t", "location": int64(1)}, "location"},
	}
	for _, c := range cases {
		ps := SensorBigQueryTable().Check(c.with)
		if len(ps) != 1 || ps[0].Arg != c.arg {
			t.Errorf("%v: problems %+v; want one on %q", c.with, ps, c.arg)
		}
	}
	for _, ok := range []map[string]any{
		{"dataset": "staging", "table": "orders"},
		{"project": "example.com:my-project", "dataset": "staging", "table": "orders_{{ .ds_nodash }}", "location": "EU"},
		{"dataset": "staging", "table": "orders", "partition": "{{ .ds_nodash }}"},
		{"dataset": "staging", "table": "orders", "partition": int64(20250101)},
		{"dataset": "staging", "table": "orders", "partition": "__NULL__"},
		{"dataset": "staging", "table": "orders", "partition": "2025010112"},
	} {
		if ps := SensorBigQueryTable().Check(ok); len(ps) != 0 {
			t.Errorf("%v flagged: %+v", ok, ps)
		}
	}
}
