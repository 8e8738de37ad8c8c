package bq

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// SensorBigQueryTable is the `sensor.bigquery_table` task type (Airflow's
// BigQueryTableExistenceSensor and BigQueryTablePartitionExistenceSensor): each poke checks
// that a table exists or, with partition, that one of its partitions has rows.
//
//	with:
//	  project: my-project           # default GOOGLE_CLOUD_PROJECT
//	  dataset: staging
//	  table: orders
//	  partition: "{{ .ds_nodash }}" # optional: a partition id (20250101, 2025010112, __NULL__)
//	  location: asia-northeast3     # optional: where the partition query runs
//
// A table (or dataset) that does not exist, or a partition without rows, is "not yet"; any
// other BigQuery error is a failed poke. The partition check queries
// INFORMATION_SCHEMA.PARTITIONS, which only real BigQuery has (not the local emulator).
func SensorBigQueryTable() taskrun.Type {
	return taskrun.Type{Name: "sensor.bigquery_table", Inline: true, Run: runSensorBigQueryTable, Check: checkSensorBigQueryTable}
}

var sensorBigQueryArgs = []string{"project", "dataset", "table", "partition", "location"}

var (
	// datasetName is BigQuery's rule for dataset ids: letters, digits and _.
	datasetName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	// projectName accepts project ids, including domain-scoped ones (example.com:my-project).
	projectName = regexp.MustCompile(`^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,61}[a-z0-9]$`)
	// partitionID is a time partition (YYYY, YYYYMM, YYYYMMDD, YYYYMMDDHH), an integer-range
	// partition's start, or one of the special partitions.
	partitionID = regexp.MustCompile(`^(\d{4}|\d{6}|\d{8}|\d{10}|-?\d+|__NULL__|__UNPARTITIONED__)$`)
)

func checkSensorBigQueryTable(with map[string]any) []dag.ArgProblem {
	ps := taskrun.UnknownArgs(with, sensorBigQueryArgs)
	for _, k := range []string{"dataset", "table"} {
		if s, ok := with[k].(string); !ok || strings.TrimSpace(s) == "" {
			ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("a sensor.bigquery_table task needs with.%s", k), Hint: "dataset: staging, table: orders"})
		}
	}
	for _, k := range []string{"project", "location", "partition"} {
		if v, ok := with[k]; ok {
			if _, ok := bqString(k, v); !ok {
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("%s must be a string, not %v", k, v)})
			}
		}
	}
	for _, k := range []string{"project", "dataset", "table", "partition"} {
		if s, ok := bqString(k, with[k]); ok && s != "" && !taskrun.IsTemplate(s) {
			if err := checkBigQueryName(k, s); err != nil {
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: err.Error()})
			}
		}
	}
	return ps
}

// checkBigQueryName checks a literal project, dataset, table or partition id.
func checkBigQueryName(arg, s string) error {
	switch arg {
	case "project":
		if !projectName.MatchString(s) {
			return fmt.Errorf("project %q is not a project id (lowercase letters, digits and -, 6 to 30 characters)", s)
		}
	case "dataset":
		if !datasetName.MatchString(s) {
			return fmt.Errorf("dataset %q is not a dataset id (letters, digits and _; give the project in with.project)", s)
		}
	case "table":
		if strings.ContainsAny(s, ".$`:") {
			return fmt.Errorf("table %q is not a bare table name: give the dataset in with.dataset, the project in with.project and a partition in with.partition", s)
		}
	case "partition":
		if !partitionID.MatchString(s) {
			return fmt.Errorf("partition %q is not a partition id: YYYYMMDD (day), YYYYMMDDHH (hour), YYYYMM, YYYY, an integer range start, or __NULL__", s)
		}
	}
	return nil
}

// bqString reads a name argument: a string, or for partition also a whole number, an id
// written without quotes (partition: 20250101).
func bqString(arg string, v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int, int64:
		return fmt.Sprint(x), arg == "partition"
	}
	return "", false
}

// bqTableSensor is a sensor.bigquery_table task's arguments, read from the rendered with.
type bqTableSensor struct {
	project, dataset, table, partition, location string
}

func (s bqTableSensor) String() string { return s.project + "." + s.dataset + "." + s.table }

func readBigQueryTableArgs(tc *taskrun.Context) (bqTableSensor, error) {
	a := tc.Args
	var s bqTableSensor
	for _, f := range []struct {
		arg string
		dst *string
	}{{"project", &s.project}, {"dataset", &s.dataset}, {"table", &s.table}, {"partition", &s.partition}, {"location", &s.location}} {
		v, ok := a[f.arg]
		if !ok {
			continue
		}
		str, isStr := bqString(f.arg, v)
		if !isStr {
			return s, fmt.Errorf("sensor.bigquery_table: with.%s must be a string, not %v", f.arg, v)
		}
		*f.dst = strings.TrimSpace(str)
	}
	if s.project == "" && tc.Getenv != nil {
		s.project = tc.Getenv("GOOGLE_CLOUD_PROJECT")
	}
	if s.project == "" {
		return s, errors.New("sensor.bigquery_table: no project: set with.project or GOOGLE_CLOUD_PROJECT")
	}
	if s.dataset == "" || s.table == "" {
		return s, errors.New("sensor.bigquery_table: with.dataset and with.table are required (dataset: staging, table: orders)")
	}
	for _, k := range []struct{ arg, v string }{{"dataset", s.dataset}, {"table", s.table}} {
		if err := checkBigQueryName(k.arg, k.v); err != nil {
			return s, fmt.Errorf("sensor.bigquery_table: %w", err)
		}
	}
	if s.partition != "" {
		if err := checkBigQueryName("partition", s.partition); err != nil {
			return s, fmt.Errorf("sensor.bigquery_table: %w", err)
		}
		// The project goes into the partition query's SQL; a literal one was checked by
		// Check, GOOGLE_CLOUD_PROJECT or a template only now.
		if err := checkBigQueryName("project", s.project); err != nil {
			return s, fmt.Errorf("sensor.bigquery_table: %w", err)
		}
	}
	return s, nil
}

// partitionQuery is the query that counts the rows of one partition of a table, as
// INFORMATION_SCHEMA.PARTITIONS reports them: 1 when the partition has rows, 0 when it has
// none or does not exist. project and dataset must be valid ids (they are quoted in the SQL,
// not passed as parameters, which BigQuery does not allow for table names).
func partitionQuery(project, dataset, table, partition string) (string, []bigquery.QueryParameter) {
	sql := "SELECT COUNT(*) FROM `" + project + "." + dataset + ".INFORMATION_SCHEMA.PARTITIONS`" +
		" WHERE table_name = @table AND partition_id = @partition AND total_rows > 0"
	return sql, []bigquery.QueryParameter{{Name: "table", Value: table}, {Name: "partition", Value: partition}}
}

func runSensorBigQueryTable(ctx context.Context, tc *taskrun.Context) engine.Result {
	s, err := readBigQueryTableArgs(tc)
	if err != nil {
		return taskrun.Final(err.Error())
	}
	opts := bigqueryOptions(tc.Getenv)
	client, err := bigquery.NewClient(ctx, s.project, opts...)
	if err != nil {
		return taskrun.Failed(nil, "sensor.bigquery_table: "+err.Error())
	}
	defer client.Close()
	client.Location = s.location

	md, err := client.DatasetInProject(s.project, s.dataset).Table(s.table).Metadata(ctx)
	if isNotFound(err) {
		tc.Log.Info(fmt.Sprintf("sensor.bigquery_table: table %s does not exist: not yet (%s)", s, describeError(err)))
		return engine.Result{State: scheduler.AttemptReschedule}
	}
	if err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("sensor.bigquery_table: reading table %s: %s", s, describeError(err)))
	}
	out := map[string]any{"table": s.String(), "num_rows": md.NumRows}
	if !md.LastModifiedTime.IsZero() {
		out["last_modified"] = md.LastModifiedTime.UTC().Format(time.RFC3339)
	}
	if s.partition == "" {
		tc.Log.Info(fmt.Sprintf("sensor.bigquery_table: table %s exists: condition met", s))
		return taskrun.SensorXCom("sensor.bigquery_table", out)
	}
	sql, params := partitionQuery(s.project, s.dataset, s.table, s.partition)
	q := client.Query(sql)
	q.Parameters = params
	q.Location = s.location
	q.Labels = map[string]string{"updraft_dag": labelValueOf(tc.Ref.DagID), "updraft_task": labelValueOf(tc.Ref.TaskID),
		"updraft_run": labelValueOf(tc.Ref.RunID), "updraft_sensor": "bigquery_table"}
	n, err := readCount(ctx, q)
	if isNotFound(err) || isBQNotFound(err) {
		tc.Log.Info(fmt.Sprintf("sensor.bigquery_table: partition %s of %s: not found: not yet (%s)", s.partition, s, describeError(err)))
		return engine.Result{State: scheduler.AttemptReschedule}
	}
	if isInvalidQuery(err) { // BigQuery refused the query itself: no later poke can do better
		return taskrun.Final(fmt.Sprintf("sensor.bigquery_table: querying %s.%s.INFORMATION_SCHEMA.PARTITIONS for partition %s of %s: %s", s.project, s.dataset, s.partition, s.table, describeError(err)))
	}
	if err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("sensor.bigquery_table: querying %s.%s.INFORMATION_SCHEMA.PARTITIONS for partition %s of %s: %s", s.project, s.dataset, s.partition, s.table, describeError(err)))
	}
	if n == 0 && md.TimePartitioning == nil && md.RangePartitioning == nil {
		return taskrun.Final(fmt.Sprintf("sensor.bigquery_table: table %s is not partitioned, so partition %s can never appear: remove with.partition to wait for the table, or name a partitioned table", s, s.partition))
	}
	if n == 0 {
		tc.Log.Info(fmt.Sprintf("sensor.bigquery_table: partition %s of %s has no rows or does not exist: not yet", s.partition, s))
		return engine.Result{State: scheduler.AttemptReschedule}
	}
	tc.Log.Info(fmt.Sprintf("sensor.bigquery_table: partition %s of %s has rows: condition met", s.partition, s))
	out["partition"] = s.partition
	delete(out, "num_rows") // the table's, not the partition's
	return taskrun.SensorXCom("sensor.bigquery_table", out)
}

// readCount runs a query returning one integer and reads it.
func readCount(ctx context.Context, q *bigquery.Query) (int64, error) {
	it, err := q.Read(ctx)
	if err != nil {
		return 0, err
	}
	var row []bigquery.Value
	err = it.Next(&row)
	if errors.Is(err, iterator.Done) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(row) != 1 {
		return 0, fmt.Errorf("the count query returned %d columns", len(row))
	}
	n, ok := row[0].(int64)
	if !ok {
		return 0, fmt.Errorf("the count query returned %v (%T), not an integer", row[0], row[0])
	}
	return n, nil
}

// isBQNotFound reports a job error whose reason is notFound (a dataset that does not exist,
// when a query names it).
func isBQNotFound(err error) bool {
	var be *bigquery.Error
	return errors.As(err, &be) && be.Reason == "notFound"
}

// isInvalidQuery reports an error whose reason is invalidQuery: the query itself was refused.
func isInvalidQuery(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		for _, e := range ge.Errors {
			if e.Reason == "invalidQuery" {
				return true
			}
		}
	}
	var be *bigquery.Error
	return errors.As(err, &be) && be.Reason == "invalidQuery"
}
