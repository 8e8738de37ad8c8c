package bq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

const (
	// BigQueryEmulatorEnv names the local BigQuery emulator's REST host ("127.0.0.1:PORT").
	// The client library does not read it: the type points its client there itself.
	BigQueryEmulatorEnv = "BIGQUERY_EMULATOR_HOST"

	defaultMaxRows = 1000
	maxMaxRows     = 10000
	// xcomRowBudget leaves room under engine.MaxXComBytes for the rest of the XCom value.
	xcomRowBudget = engine.MaxXComBytes - 4<<10
	// cancelTimeout bounds the best-effort jobs.cancel after the task's context ended.
	cancelTimeout = 10 * time.Second
)

// BigQueryQuery is the `bigquery.query` task type (Airflow's BigQueryInsertJobOperator): one
// query job, its rows to XCom (bounded) or its result written to a destination table.
//
//	with:
//	  sql: SELECT user, SUM(bytes) AS bytes FROM `logs.jobs` WHERE day = @day GROUP BY 1 LIMIT @n
//	  params: {day: {type: DATE, value: "{{ .ds }}"}, n: 10}   # named query parameters (@day, @n)
//	  project: my-project           # default GOOGLE_CLOUD_PROJECT
//	  location: asia-northeast3     # the job's location (default: BigQuery infers it)
//	  destination: reports.usage    # or project.dataset.table; table$YYYYMMDD for a partition
//	  write: truncate               # truncate | append | empty (default empty)
//	  max_rows: 1000                # rows kept in XCom without a destination (≤ 10000)
//	  labels: {team: data}          # job labels, with updraft_dag, updraft_task, updraft_run
//
// The job id is "updraft_" + the id of the attempt that submits it, so a redelivered attempt
// re-attaches to its job (jobs.insert answers 409) instead of running it again. The task then
// waits for the job in up_for_reschedule, each later attempt reading its status once
// (bigquery_defer.go); the task's timeout bounds the whole wait, and when it passes the job is
// cancelled. Called without a claim to hold the job (Context.Job nil), it waits inline.
func BigQueryQuery() taskrun.Type {
	return taskrun.Type{Name: "bigquery.query", Inline: true, Run: runBigQuery, Check: taskrun.SQLFileCheck(checkBigQuery),
		InlineLimit: bigQueryInlineLimit, InlineCleanup: cancelTimeout}
}

var bigqueryArgs = []string{"sql", "location", "project", "destination", "write", "max_rows", "labels", "params"}

var (
	// labelKey is BigQuery's rule for label keys: lowercase letters, digits, _ and -,
	// starting with a letter, at most 63 characters.
	labelKey   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValue = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	paramName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	notJobID   = regexp.MustCompile(`[^A-Za-z0-9_-]`)
	notLabel   = regexp.MustCompile(`[^a-z0-9_-]`)
)

func checkBigQuery(with map[string]any) []dag.ArgProblem {
	ps := taskrun.UnknownArgs(with, bigqueryArgs)
	if s, ok := with["sql"].(string); !ok || strings.TrimSpace(s) == "" {
		ps = append(ps, dag.ArgProblem{Arg: "sql", Msg: "a bigquery.query task needs with.sql", Hint: "sql: SELECT 1"})
	}
	for _, k := range []string{"location", "project", "destination"} {
		if v, ok := with[k]; ok {
			if _, ok := v.(string); !ok {
				ps = append(ps, dag.ArgProblem{Arg: k, Msg: fmt.Sprintf("%s must be a string, not %v", k, v)})
			}
		}
	}
	if d, ok := with["destination"].(string); ok && !taskrun.IsTemplate(d) {
		if _, err := parseTableRef(d); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "destination", Msg: err.Error(), Hint: "destination: dataset.table or project.dataset.table"})
		}
	}
	if w, ok := with["write"]; ok {
		if _, hasDst := with["destination"]; !hasDst {
			ps = append(ps, dag.ArgProblem{Arg: "write", Msg: "write applies to a destination table, and this task has none", Hint: "destination: dataset.table"})
		} else if !taskrun.IsTemplate(w) {
			if _, err := writeDisposition(w); err != nil {
				ps = append(ps, dag.ArgProblem{Arg: "write", Msg: err.Error(), Hint: "write: truncate"})
			}
		}
	}
	if v, ok := with["max_rows"]; ok && !taskrun.IsTemplate(v) {
		if _, err := maxRows(v); err != nil {
			ps = append(ps, dag.ArgProblem{Arg: "max_rows", Msg: err.Error(), Hint: "max_rows: 1000"})
		}
	}
	if v, ok := with["labels"]; ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			ps = append(ps, dag.ArgProblem{Arg: "labels", Msg: "labels must be a mapping of names to values", Hint: "labels: {team: data}"})
		}
		for _, k := range sortedKeys(m) {
			if !labelKey.MatchString(k) {
				ps = append(ps, dag.ArgProblem{Arg: "labels." + k, Msg: fmt.Sprintf("label key %q: use lowercase letters, digits, _ and -, starting with a letter (at most 63)", k)})
			}
			switch lv := m[k].(type) {
			case string:
				if !taskrun.IsTemplate(lv) && !labelValue.MatchString(lv) {
					ps = append(ps, dag.ArgProblem{Arg: "labels." + k, Msg: fmt.Sprintf("label value %q: use lowercase letters, digits, _ and - (at most 63)", lv)})
				}
			case int, int64, bool:
			default:
				ps = append(ps, dag.ArgProblem{Arg: "labels." + k, Msg: fmt.Sprintf("label value %v must be a string", lv)})
			}
		}
	}
	if v, ok := with["params"]; ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			ps = append(ps, dag.ArgProblem{Arg: "params", Msg: "params must be a mapping of parameter names to values", Hint: "params: {day: \"{{ .ds }}\"}  # @day in the SQL"})
		}
		for _, k := range sortedKeys(m) {
			if !paramName.MatchString(k) {
				ps = append(ps, dag.ArgProblem{Arg: "params." + k, Msg: fmt.Sprintf("query parameter name %q: use letters, digits and _, not starting with a digit", k)})
			} else if _, err := paramValue(m[k]); err != nil {
				ps = append(ps, dag.ArgProblem{Arg: "params." + k, Msg: err.Error()})
			}
		}
	}
	return ps
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// tableRef is a destination table; Project "" means the job's project.
type tableRef struct{ Project, Dataset, Table string }

func (t tableRef) String() string { return t.Project + "." + t.Dataset + "." + t.Table }

// parseTableRef reads "dataset.table", "project.dataset.table" or "project:dataset.table",
// optionally in backquotes. The table may carry a partition decorator (table$20250101).
func parseTableRef(s string) (tableRef, error) {
	s = strings.Trim(strings.TrimSpace(s), "`")
	var project string
	if p, rest, ok := strings.Cut(s, ":"); ok {
		project, s = p, rest
	}
	parts := strings.Split(s, ".")
	if project == "" && len(parts) == 3 {
		project, parts = parts[0], parts[1:]
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" || strings.HasPrefix(parts[1], "$") {
		return tableRef{}, fmt.Errorf("destination %q is not dataset.table or project.dataset.table", s)
	}
	return tableRef{Project: project, Dataset: parts[0], Table: parts[1]}, nil
}

func writeDisposition(v any) (bigquery.TableWriteDisposition, error) {
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "truncate":
		return bigquery.WriteTruncate, nil
	case "append":
		return bigquery.WriteAppend, nil
	case "empty":
		return bigquery.WriteEmpty, nil
	}
	return "", fmt.Errorf("write %v is not truncate, append or empty", v)
}

func maxRows(v any) (int, error) {
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case uint64:
		n = int(min(x, math.MaxInt32))
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("max_rows %v is not a whole number", v)
		}
		n = int(x)
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("max_rows %q is not a number", x)
		}
		n = i
	default:
		return 0, fmt.Errorf("max_rows %v is not a number", v)
	}
	if n < 0 || n > maxMaxRows {
		return 0, fmt.Errorf("max_rows %d is not between 0 and %d (XCom is for small results: write more to a destination table)", n, maxMaxRows)
	}
	return n, nil
}

// paramTypes are the scalar types a parameter may name: {type: DATE, value: "{{ .ds }}"}.
var paramTypes = []string{"STRING", "INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC", "BOOL", "DATE", "DATETIME", "TIME", "TIMESTAMP", "JSON", "BYTES", "GEOGRAPHY", "INTERVAL"}

// paramValue turns a YAML value into a query parameter value. The client infers the BigQuery
// type of a plain value: string STRING, whole numbers INT64, other numbers FLOAT64, bool BOOL,
// a time TIMESTAMP, a list of one of these an ARRAY. {type: T, value: V} names the type, for
// the templated values that are strings but stand for a DATE, a NUMERIC and so on.
func paramValue(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		typ, _ := x["type"].(string)
		val, hasVal := x["value"]
		if typ == "" || !hasVal || len(x) != 2 {
			return nil, errors.New("a typed parameter is {type: DATE, value: \"{{ .ds }}\"}")
		}
		switch val.(type) {
		case string, int, int64, uint64, float64, bool:
		default:
			return nil, fmt.Errorf("a typed parameter's value must be a scalar, not %v", val)
		}
		if taskrun.IsTemplate(typ) {
			return &bigquery.QueryParameterValue{Type: bigquery.StandardSQLDataType{TypeKind: typ}, Value: fmt.Sprint(val)}, nil
		}
		kind := strings.ToUpper(typ)
		found := false
		for _, k := range paramTypes {
			found = found || k == kind
		}
		if !found {
			return nil, fmt.Errorf("parameter type %q is not one of %s", typ, strings.Join(paramTypes, ", "))
		}
		return &bigquery.QueryParameterValue{Type: bigquery.StandardSQLDataType{TypeKind: kind}, Value: fmt.Sprint(val)}, nil
	case string, bool, int64, float64, time.Time:
		return x, nil
	case int:
		return int64(x), nil
	case uint64:
		return int64(x), nil
	case []any:
		if len(x) == 0 {
			return nil, errors.New("an empty list has no element type: leave the parameter out or use a literal in the SQL")
		}
		var (
			ss []string
			is []int64
			fs []float64
			bs []bool
		)
		for _, e := range x {
			ev, err := paramValue(e)
			if err != nil {
				return nil, err
			}
			switch y := ev.(type) {
			case string:
				ss = append(ss, y)
			case int64:
				is = append(is, y)
			case float64:
				fs = append(fs, y)
			case bool:
				bs = append(bs, y)
			default:
				return nil, fmt.Errorf("list element %v: lists hold strings, numbers or booleans", e)
			}
		}
		switch len(x) {
		case len(ss):
			return ss, nil
		case len(is):
			return is, nil
		case len(fs):
			return fs, nil
		case len(bs):
			return bs, nil
		case len(is) + len(fs):
			for _, i := range is {
				fs = append(fs, float64(i))
			}
			return fs, nil
		}
		return nil, fmt.Errorf("list %v mixes types", v)
	case nil:
		return nil, errors.New("a null parameter has no type: use NULL in the SQL instead")
	}
	return nil, fmt.Errorf("parameter value %v (%T): use a string, number, boolean, a list of them, or {type: T, value: V}", v, v)
}

// jobID is the attempt's job id: BigQuery allows letters, digits, _ and -, up to 1024.
func jobID(attemptID string) string {
	id := "updraft_" + notJobID.ReplaceAllString(attemptID, "_")
	if len(id) > 1024 {
		id = id[:1024]
	}
	return id
}

// labelValueOf sanitizes a value for a BigQuery label: lowercase, [a-z0-9_-], ≤ 63 characters.
func labelValueOf(s string) string {
	s = notLabel.ReplaceAllString(strings.ToLower(s), "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// bigqueryOptions connect the client: to the endpoint in BIGQUERY_EMULATOR_HOST when it is
// set (plain HTTP, no credentials; the SDK has no emulator variable of its own), else to
// BigQuery with Application Default Credentials. Nothing else here knows about the emulator:
// where it differs from BigQuery, its front in emulators/bigquery makes it behave as BigQuery.
func bigqueryOptions(getenv func(string) string) []option.ClientOption {
	host := getenv(BigQueryEmulatorEnv)
	if host == "" {
		return nil
	}
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	return []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication()}
}

// bqQuery is a bigquery.query task's arguments, read from the rendered with.
type bqQuery struct {
	sql, project, location string
	dst                    *tableRef
	write                  bigquery.TableWriteDisposition
	maxRows                int
	labels                 map[string]string
	params                 []bigquery.QueryParameter
}

func readBigQueryArgs(tc *taskrun.Context) (*bqQuery, error) {
	a := tc.Args
	q := &bqQuery{write: bigquery.WriteEmpty, maxRows: defaultMaxRows, labels: map[string]string{}}
	q.sql, _ = a["sql"].(string)
	if strings.TrimSpace(q.sql) == "" {
		return nil, errors.New("bigquery: with.sql is empty")
	}
	q.project, _ = a["project"].(string)
	if q.project == "" && tc.Getenv != nil {
		q.project = tc.Getenv("GOOGLE_CLOUD_PROJECT")
	}
	if q.project == "" {
		return nil, errors.New("bigquery: no project: set with.project or GOOGLE_CLOUD_PROJECT")
	}
	q.location, _ = a["location"].(string)
	if d, _ := a["destination"].(string); d != "" {
		ref, err := parseTableRef(d)
		if err != nil {
			return nil, fmt.Errorf("bigquery: %w", err)
		}
		if ref.Project == "" {
			ref.Project = q.project
		}
		q.dst = &ref
	}
	if w, ok := a["write"]; ok {
		wd, err := writeDisposition(w)
		if err != nil {
			return nil, fmt.Errorf("bigquery: %w", err)
		}
		q.write = wd
	}
	if v, ok := a["max_rows"]; ok {
		n, err := maxRows(v)
		if err != nil {
			return nil, fmt.Errorf("bigquery: %w", err)
		}
		q.maxRows = n
	}
	if m, ok := a["labels"].(map[string]any); ok {
		for k, v := range m {
			q.labels[k] = fmt.Sprint(v)
		}
	}
	// Updraft's own labels win over the task's, so that jobs are always traceable to a run.
	q.labels["updraft_dag"] = labelValueOf(tc.Ref.DagID)
	q.labels["updraft_task"] = labelValueOf(tc.Ref.TaskID)
	q.labels["updraft_run"] = labelValueOf(tc.Ref.RunID)
	if m, ok := a["params"].(map[string]any); ok {
		for _, k := range sortedKeys(m) {
			v, err := paramValue(m[k])
			if err != nil {
				return nil, fmt.Errorf("bigquery: with.params.%s: %w", k, err)
			}
			q.params = append(q.params, bigquery.QueryParameter{Name: k, Value: v})
		}
	}
	return q, nil
}

func runBigQuery(ctx context.Context, tc *taskrun.Context) engine.Result {
	args, err := readBigQueryArgs(tc)
	if err != nil {
		return taskrun.Final(err.Error())
	}
	opts := bigqueryOptions(tc.Getenv)
	client, err := bigquery.NewClient(ctx, args.project, opts...)
	if err != nil {
		return taskrun.Failed(nil, "bigquery: "+err.Error())
	}
	defer client.Close()
	client.Location = args.location

	if tc.Job != nil && tc.Ref.AttemptID != "" && !taskrun.InContainer(tc) {
		return deferBigQuery(ctx, tc, client, args) // bigquery_defer.go
	}
	// Without a claim to hold the job between pokes (a direct call), wait inline.
	q := buildQuery(client, args, tc.Ref.AttemptID)
	if q.JobID == "" {
		tc.Log.Warn("bigquery: this attempt has no id: the job gets a random one and a redelivery would run it again")
	}
	job, reattached, err := submit(ctx, client, q, args, tc.Log)
	if err != nil {
		if ctx.Err() != nil {
			if q.JobID != "" {
				cancelJob(ctx, client, q.JobID, args.location, tc.Log)
			}
			return taskrun.Failed(nil, fmt.Sprintf("bigquery: the task was stopped while submitting job %s (%v); it was cancelled if BigQuery had it", q.JobID, context.Cause(ctx)))
		}
		return taskrun.Failed(nil, err.Error())
	}
	verb := "started"
	if reattached {
		verb = "re-attached to"
	}
	tc.Log.Info(fmt.Sprintf("bigquery: %s job %s: %s", verb, job.ID(), consoleURL(job, args.location)))

	status, err := wait(ctx, job)
	if err != nil && ctx.Err() != nil {
		cancelJob(ctx, client, job.ID(), job.Location(), tc.Log)
		return taskrun.Failed(nil, fmt.Sprintf("bigquery: job %s cancelled: the task was stopped (%v)", job.ID(), context.Cause(ctx)))
	}
	if err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("bigquery: job %s: %s", job.ID(), describeError(err)))
	}
	if err := status.Err(); err != nil {
		return taskrun.Failed(nil, fmt.Sprintf("bigquery: job %s failed: %s", job.ID(), describeJobErrors(status)))
	}
	return bigQueryDone(ctx, tc, job, status, args)
}

// buildQuery is the query job of an attempt: its job id derives from the attempt id.
func buildQuery(client *bigquery.Client, args *bqQuery, attemptID string) *bigquery.Query {
	q := client.Query(args.sql)
	q.Labels = args.labels
	q.Parameters = args.params
	if attemptID != "" {
		q.JobID = jobID(attemptID)
	}
	if args.dst != nil {
		q.Dst = client.DatasetInProject(args.dst.Project, args.dst.Dataset).Table(args.dst.Table)
		q.WriteDisposition = args.write
		q.CreateDisposition = bigquery.CreateIfNeeded
	}
	return q
}

// bigQueryDone reads a finished job's results into the attempt's XCom: its rows (bounded),
// or the destination table it wrote.
func bigQueryDone(ctx context.Context, tc *taskrun.Context, job *bigquery.Job, status *bigquery.JobStatus, args *bqQuery) engine.Result {
	out := map[string]any{"job_id": job.ID()}
	var (
		qs    *bigquery.QueryStatistics
		bytes int64
	)
	if status.Statistics != nil {
		bytes = status.Statistics.TotalBytesProcessed
		out["total_bytes_processed"] = bytes
		qs, _ = status.Statistics.Details.(*bigquery.QueryStatistics)
	}
	if qs != nil && isDML(qs.StatementType) {
		out["rows_affected"] = qs.NumDMLAffectedRows
	}
	if args.dst != nil {
		out["destination"] = args.dst.String()
		tc.Log.Info(fmt.Sprintf("bigquery: job %s wrote %s (%s), %d bytes processed", job.ID(), args.dst, strings.ToLower(strings.TrimPrefix(string(args.write), "WRITE_")), bytes))
	} else {
		rows, total, truncated, err := readRows(ctx, job, args.maxRows)
		if err != nil {
			if ctx.Err() != nil {
				return taskrun.Failed(nil, fmt.Sprintf("bigquery: reading job %s's rows: the task was stopped (%v)", job.ID(), context.Cause(ctx)))
			}
			return taskrun.Failed(nil, fmt.Sprintf("bigquery: reading job %s's rows: %s", job.ID(), describeError(err)))
		}
		out["rows"], out["total_rows"], out["truncated"] = rows, total, truncated
		if truncated {
			tc.Log.Warn(fmt.Sprintf("bigquery: job %s returned %d rows; XCom keeps the first %d (max_rows %d, XCom at most %d KiB): write large results to a destination table",
				job.ID(), total, len(rows), args.maxRows, engine.MaxXComBytes>>10))
		} else {
			tc.Log.Info(fmt.Sprintf("bigquery: job %s returned %d rows", job.ID(), total))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return taskrun.Failed(nil, "bigquery: encoding the XCom value: "+err.Error())
	}
	return engine.Result{State: scheduler.AttemptSuccess, XCom: b}
}

func isDML(statementType string) bool {
	switch statementType {
	case "INSERT", "UPDATE", "DELETE", "MERGE":
		return true
	}
	return false
}

// submit inserts the job. When jobs.insert fails because the job id exists (409) or for any
// other reason while a job with this
// id exists (an earlier delivery of the same attempt created it, say, and its answer was lost),
// it re-attaches to that job instead of running the query again.
func submit(ctx context.Context, client *bigquery.Client, q *bigquery.Query, args *bqQuery, log *tasks.Logger) (job *bigquery.Job, reattached bool, err error) {
	job, err = q.Run(ctx)
	if err == nil {
		return job, false, nil
	}
	if q.JobID == "" || ctx.Err() != nil {
		return nil, false, fmt.Errorf("bigquery: jobs.insert: %s", describeError(err))
	}
	existing, gerr := client.JobFromIDLocation(ctx, q.JobID, args.location)
	if gerr != nil {
		return nil, false, fmt.Errorf("bigquery: jobs.insert: %s", describeError(err))
	}
	if !isConflict(err) {
		log.Warn(fmt.Sprintf("bigquery: jobs.insert failed (%s) but job %s exists: re-attaching to it", describeError(err), q.JobID))
	}
	return existing, true, nil
}

// wait waits for the job. A failed query makes the wait itself fail (getQueryResults answers
// the job's error); the job's status then holds BigQuery's full description, when it has one.
func wait(ctx context.Context, job *bigquery.Job) (*bigquery.JobStatus, error) {
	if st := job.LastStatus(); st != nil && st.Done() && st.Err() != nil {
		return st, nil
	}
	st, err := job.Wait(ctx)
	if err == nil || ctx.Err() != nil {
		return st, err
	}
	if st, serr := job.Status(ctx); serr == nil && st.Done() && st.Err() != nil {
		return st, nil
	}
	return nil, err
}

func cancelJob(ctx context.Context, client *bigquery.Client, id, location string, log *tasks.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer cancel()
	job, err := client.JobFromIDLocation(cctx, id, location)
	if err == nil {
		err = job.Cancel(cctx)
	}
	if err != nil && !isNotFound(err) {
		log.Warn(fmt.Sprintf("bigquery: cancelling job %s: %s", id, describeError(err)))
		return
	}
	if err == nil {
		log.Info(fmt.Sprintf("bigquery: asked BigQuery to cancel job %s", id))
	}
}

// readRows reads at most limit rows of a query job's result as JSON-ready maps, keeping the
// encoded rows within the XCom budget; truncated reports whether rows were left out.
func readRows(ctx context.Context, job *bigquery.Job, limit int) (rows []map[string]any, total uint64, truncated bool, err error) {
	it, err := job.Read(ctx)
	if err != nil {
		return nil, 0, false, err
	}
	if limit > 0 {
		it.PageInfo().MaxSize = limit // one page holds all we keep
	}
	rows = []map[string]any{}
	size := 0
	for len(rows) < limit {
		var vals []bigquery.Value
		err := it.Next(&vals)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, 0, false, err
		}
		row := recordJSON(vals, it.Schema)
		b, err := json.Marshal(row)
		if err != nil {
			return nil, 0, false, err
		}
		if size+len(b)+1 > xcomRowBudget {
			truncated = true
			break
		}
		size += len(b) + 1
		rows = append(rows, row)
	}
	total = max(it.TotalRows, uint64(len(rows)))
	return rows, total, truncated || total > uint64(len(rows)), nil
}

// recordJSON turns a row (or a RECORD value) into a map ready for JSON: NUMERIC and
// BIGNUMERIC as JSON numbers with their exact digits, dates and times in ISO 8601, timestamps in RFC 3339
// (UTC), BYTES base64, repeated fields as lists.
func recordJSON(vals []bigquery.Value, schema bigquery.Schema) map[string]any {
	m := make(map[string]any, len(vals))
	for i, v := range vals {
		name := fmt.Sprintf("f%d_", i)
		var f *bigquery.FieldSchema
		if i < len(schema) {
			f = schema[i]
			name = f.Name
		}
		m[name] = valueJSON(v, f)
	}
	return m
}

func valueJSON(v bigquery.Value, f *bigquery.FieldSchema) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []bigquery.Value:
		if f != nil && f.Type == bigquery.RecordFieldType && !f.Repeated {
			return recordJSON(x, f.Schema)
		}
		out := make([]any, len(x))
		elem := f
		if f != nil && f.Repeated {
			e := *f
			e.Repeated = false
			elem = &e
		}
		for i, e := range x {
			out[i] = valueJSON(e, elem)
		}
		return out
	case *big.Rat:
		d := bigquery.NumericString(x)
		if f != nil && f.Type == bigquery.BigNumericFieldType {
			d = bigquery.BigNumericString(x)
		}
		if strings.Contains(d, ".") {
			d = strings.TrimRight(strings.TrimRight(d, "0"), ".")
		}
		return json.Number(d) // the exact digits, as a JSON number
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case civil.Date:
		return x.String()
	case civil.Time:
		return x.String()
	case civil.DateTime:
		return x.String()
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64) // JSON has no NaN or Infinity
		}
		return x
	}
	return v
}

// consoleURL links to the job in the Cloud console.
func consoleURL(job *bigquery.Job, location string) string {
	if job.Location() != "" {
		location = job.Location()
	}
	j := "bq:" + location + ":" + job.ID()
	return "https://console.cloud.google.com/bigquery?project=" + url.QueryEscape(job.ProjectID()) +
		"&j=" + url.QueryEscape(j) + "&page=queryresults"
}

// describeJobErrors says what a failed job's status reports: the main error, then any others.
func describeJobErrors(st *bigquery.JobStatus) string {
	var parts []string
	seen := map[string]bool{}
	add := func(e *bigquery.Error) {
		if e == nil {
			return
		}
		s := describeBQError(e.Reason, e.Location, e.Message)
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	var main *bigquery.Error
	if errors.As(st.Err(), &main) {
		add(main)
	} else if st.Err() != nil {
		parts = append(parts, st.Err().Error())
	}
	for _, e := range st.Errors {
		add(e)
	}
	return strings.Join(parts, "; ")
}

// describeBQError formats one BigQuery error: "Unrecognized name: foo at [3:10] (reason
// invalidQuery, location query)".
func describeBQError(reason, location, message string) string {
	var extra []string
	if reason != "" {
		extra = append(extra, "reason "+reason)
	}
	if location != "" {
		extra = append(extra, "location "+location)
	}
	if len(extra) == 0 {
		return message
	}
	return message + " (" + strings.Join(extra, ", ") + ")"
}

// describeError formats an API error with BigQuery's reasons and locations when it has them.
func describeError(err error) string {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		// googleapi.ErrorItem drops BigQuery's location: read the body.
		var body struct {
			Error struct {
				Errors []struct{ Reason, Location, Message string } `json:"errors"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(ge.Body), &body)
		var parts []string
		for _, e := range body.Error.Errors {
			parts = append(parts, describeBQError(e.Reason, e.Location, e.Message))
		}
		if len(parts) == 0 {
			for _, e := range ge.Errors {
				parts = append(parts, describeBQError(e.Reason, "", e.Message))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, strings.TrimSpace(ge.Message))
		}
		return strings.Join(parts, "; ") + fmt.Sprintf(" (HTTP %d)", ge.Code)
	}
	var be *bigquery.Error
	if errors.As(err, &be) {
		return describeBQError(be.Reason, be.Location, be.Message)
	}
	return err.Error()
}

func isConflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusConflict
}

func isNotFound(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusNotFound
}
