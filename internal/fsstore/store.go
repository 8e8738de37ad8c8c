package fsstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/scheduler"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("fsstore: not found")
	ErrExists   = errors.New("fsstore: already exists")
	// ErrConflict means a precondition failed: someone else changed the document since it
	// was read. Re-read and decide again.
	ErrConflict = errors.New("fsstore: changed since read")
)

// Collection names.
const (
	ColDAGs          = "dags"
	ColDAGVersions   = "dag_versions"
	ColRuns          = "runs"
	ColTaskInstances = "task_instances"
)

// Store is Updraft's Firestore state.
type Store struct {
	fs        *firestore.Client
	project   string
	reads     atomic.Int64
	writes    atomic.Int64
	conflicts atomic.Int64 // failed preconditions: someone else wrote first
	aborted   atomic.Int64 // contention aborts (codes.Aborted)

	trackMu sync.Mutex
	perDoc  map[string]int   // writes per document, when tracking
	perOp   map[string]int64 // reads and writes per calling operation, when tracing
}

// TraceOps starts counting reads and writes by the operation that made them ("read
// engine.(*Engine).Claim via GetTaskInstance"): a benchmark's or a test's breakdown of where a
// task's operations go. It costs a stack walk per call; off by default.
func (s *Store) TraceOps() {
	s.trackMu.Lock()
	s.perOp = map[string]int64{}
	s.trackMu.Unlock()
}

// OpCounts returns the counts TraceOps collected, by operation.
func (s *Store) OpCounts() map[string]int64 {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	out := make(map[string]int64, len(s.perOp))
	for k, v := range s.perOp {
		out[k] = v
	}
	return out
}

// read counts n documents (or one aggregation) read.
func (s *Store) read(n int) {
	s.reads.Add(int64(n))
	s.trace("read", int64(n))
}

// passThrough are the engine's readers of task instances (which stand a `none` record in for
// a missing document) and its transition writer: they read and write for their caller, to
// whom trace attributes the operations, so a breakdown still says which step paid them.
var passThrough = map[string]bool{
	"engine.(*Engine).instance": true, "engine.(*Engine).instances": true, "engine.(*Engine).TaskInstance": true,
	"engine.(*Engine).listInstances": true, "engine.(*Engine).applyTo": true,
}

// trace attributes n operations of a kind to the caller outside this package.
func (s *Store) trace(kind string, n int64) {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	if s.perOp == nil {
		return
	}
	pcs := make([]uintptr, 16)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	via, by := "", ""
	for {
		f, more := frames.Next()
		name := f.Function[strings.LastIndexByte(f.Function, '/')+1:]
		if strings.HasPrefix(name, "fsstore.") {
			via = strings.TrimPrefix(name, "fsstore.(*Store).")
		} else if by == "" && !strings.Contains(name, ".func") && !strings.Contains(name, ".retry") && !passThrough[name] {
			by = name
			break
		}
		if !more {
			break
		}
	}
	s.perOp[kind+" "+by+" via "+via] += n
}

// TrackWrites starts counting writes per document (for fault tests and benchmarks).
func (s *Store) TrackWrites() {
	s.trackMu.Lock()
	s.perDoc = map[string]int{}
	s.trackMu.Unlock()
}

// WritesPerDoc returns the writes counted per document ("collection/id") since TrackWrites.
func (s *Store) WritesPerDoc() map[string]int {
	s.trackMu.Lock()
	defer s.trackMu.Unlock()
	out := make(map[string]int, len(s.perDoc))
	for k, v := range s.perDoc {
		out[k] = v
	}
	return out
}

// Contention returns how many conditional writes lost a race (and were re-read and decided
// again) and how many commits Firestore aborted for contention.
func (s *Store) Contention() (conflicts, aborted int64) { return s.conflicts.Load(), s.aborted.Load() }

func (s *Store) wrote(col, id string, err error) {
	s.writes.Add(1)
	s.trace("write", 1)
	switch status.Code(err) {
	case codes.FailedPrecondition:
		s.conflicts.Add(1)
	case codes.AlreadyExists:
		if col == ColTaskInstances { // a first transition lost to another writer's (transitions.go)
			s.conflicts.Add(1)
		}
	case codes.Aborted:
		s.aborted.Add(1)
	}
	if err != nil {
		return
	}
	s.trackMu.Lock()
	if s.perDoc != nil {
		s.perDoc[col+"/"+id]++
	}
	s.trackMu.Unlock()
}

// Open connects to Firestore for the project (the emulator when FIRESTORE_EMULATOR_HOST is
// set); opts are more client options (e.g. the CLI's per-call deadlines).
func Open(ctx context.Context, project string, opts ...option.ClientOption) (*Store, error) {
	c, err := firestore.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("fsstore: connect to project %s: %w", project, err)
	}
	return &Store{fs: c, project: project}, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.fs.Close() }

// Counts returns how many documents this Store has read and written so far (aggregation
// queries count as one read, as Firestore bills them per 1,000 index entries).
func (s *Store) Counts() (reads, writes int64) { return s.reads.Load(), s.writes.Load() }

// Versioned is a record with the update time it was read at, for conditional writes.
type Versioned[T any] struct {
	Rec        T
	UpdateTime time.Time
}

func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w", op, ErrExists)
	case codes.FailedPrecondition, codes.Aborted:
		return fmt.Errorf("%s: %w", op, ErrConflict)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// CanBeDocID reports whether id can name a Firestore document: not empty, at most 1,500
// bytes, no "/", not "." or "..", and not of the reserved form __x__. An id that can't is
// one no document has: a read of it is ErrNotFound rather than Firestore's InvalidArgument
// about document paths (a run id typed with a slash, say).
func CanBeDocID(id string) bool {
	reserved := len(id) >= 4 && strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__")
	return id != "" && id != "." && id != ".." && len(id) <= 1500 && !strings.Contains(id, "/") && !reserved
}

func get[T any](ctx context.Context, s *Store, col, id string) (*Versioned[T], error) {
	if !CanBeDocID(id) {
		return nil, fmt.Errorf("fsstore: get %s/%s: %w", col, id, ErrNotFound)
	}
	snap, err := s.fs.Collection(col).Doc(id).Get(ctx)
	s.read(1)
	if err != nil {
		return nil, mapErr(fmt.Sprintf("fsstore: get %s/%s", col, id), err)
	}
	var v Versioned[T]
	if err := snap.DataTo(&v.Rec); err != nil {
		return nil, fmt.Errorf("fsstore: decode %s/%s: %w", col, id, err)
	}
	v.UpdateTime = snap.UpdateTime
	return &v, nil
}

func (s *Store) create(ctx context.Context, col, id string, data any) error {
	_, err := s.fs.Collection(col).Doc(id).Create(ctx, data)
	s.wrote(col, id, err)
	return mapErr(fmt.Sprintf("fsstore: create %s/%s", col, id), err)
}

// updateIf applies field updates to a document only if it is unchanged since updateTime.
func (s *Store) updateIf(ctx context.Context, col, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	ups := make([]firestore.Update, 0, len(fields))
	for k, v := range fields {
		ups = append(ups, firestore.Update{Path: k, Value: v})
	}
	res, err := s.fs.Collection(col).Doc(id).Update(ctx, ups, firestore.LastUpdateTime(updateTime))
	s.wrote(col, id, err)
	if err != nil {
		return time.Time{}, mapErr(fmt.Sprintf("fsstore: update %s/%s", col, id), err)
	}
	return res.UpdateTime, nil
}

func queryAll[T any](ctx context.Context, s *Store, q firestore.Query, what string) ([]Versioned[T], error) {
	it := q.Documents(ctx)
	defer it.Stop()
	var out []Versioned[T]
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, mapErr("fsstore: query "+what, err)
		}
		s.read(1)
		var v Versioned[T]
		if err := snap.DataTo(&v.Rec); err != nil {
			return nil, fmt.Errorf("fsstore: decode %s: %w", snap.Ref.Path, err)
		}
		v.UpdateTime = snap.UpdateTime
		out = append(out, v)
	}
}

// ---- DAGs

// GetDAG reads a deployed DAG.
func (s *Store) GetDAG(ctx context.Context, id string) (*Versioned[scheduler.DAGRecord], error) {
	return get[scheduler.DAGRecord](ctx, s, ColDAGs, id)
}

// CreateDAG stores a DAG deployed for the first time.
func (s *Store) CreateDAG(ctx context.Context, rec *scheduler.DAGRecord) error {
	return s.create(ctx, ColDAGs, rec.DagID, rec)
}

// UpdateDAGIf changes fields of a DAG if it is unchanged since updateTime.
func (s *Store) UpdateDAGIf(ctx context.Context, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColDAGs, id, updateTime, fields)
}

// ListDAGs reads every deployed DAG, ordered by id.
func (s *Store) ListDAGs(ctx context.Context) ([]Versioned[scheduler.DAGRecord], error) {
	return queryAll[scheduler.DAGRecord](ctx, s, s.fs.Collection(ColDAGs).OrderBy("dag_id", firestore.Asc), "dags")
}

// DueDAGs reads the DAGs whose next_due_at has passed, oldest first: an indexed range, so
// the tick reads what is due and not every DAG.
func (s *Store) DueDAGs(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.DAGRecord], error) {
	q := s.fs.Collection(ColDAGs).Where("next_due_at", "<=", now).OrderBy("next_due_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.DAGRecord](ctx, s, q, "due dags")
}

// PutVersion stores an immutable DAG version; storing the same version again is a no-op.
func (s *Store) PutVersion(ctx context.Context, v *scheduler.DAGVersion) error {
	err := s.create(ctx, ColDAGVersions, versionKey(v.DagID, v.Version), v)
	if errors.Is(err, ErrExists) {
		return nil
	}
	return err
}

// GetVersion reads one DAG version.
func (s *Store) GetVersion(ctx context.Context, dagID, version string) (*scheduler.DAGVersion, error) {
	v, err := get[scheduler.DAGVersion](ctx, s, ColDAGVersions, versionKey(dagID, version))
	if err != nil {
		return nil, err
	}
	return &v.Rec, nil
}

func versionKey(dagID, version string) string { return dagID + "~" + version }

// ---- Runs

// CreateRun creates a run; ErrExists means a run with its key is already there. The run
// must carry its expire_at (Firestore's TTL would delete a zero one at once).
func (s *Store) CreateRun(ctx context.Context, r *scheduler.Run) error {
	if err := needExpiry(ColRuns, r.Key(), r.ExpireAt); err != nil {
		return err
	}
	return s.create(ctx, ColRuns, r.Key(), r)
}

// ErrNoExpiry means a run, task instance or attempt was to be created without its expire_at.
var ErrNoExpiry = errors.New("fsstore: no expire_at")

// needExpiry refuses a record without expire_at: Firestore's TTL would delete it at once.
func needExpiry(col, id string, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("fsstore: create %s/%s: %w (set it to creation + retention)", col, id, ErrNoExpiry)
	}
	return nil
}

// GetRun reads a run.
func (s *Store) GetRun(ctx context.Context, dagID, runID string) (*Versioned[scheduler.Run], error) {
	return get[scheduler.Run](ctx, s, ColRuns, scheduler.RunKey(dagID, runID))
}

// UpdateRunIf changes fields of a run if it is unchanged since updateTime.
func (s *Store) UpdateRunIf(ctx context.Context, r *scheduler.Run, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColRuns, r.Key(), updateTime, fields)
}

// ListRuns reads a DAG's runs, newest logical date first.
func (s *Store) ListRuns(ctx context.Context, dagID string, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).OrderBy("logical_date", firestore.Desc).Limit(limit)
	return queryAll[scheduler.Run](ctx, s, q, "runs of "+dagID)
}

// FindRuns reads the runs with this run id, across DAGs (for a bare run id on the CLI).
func (s *Store) FindRuns(ctx context.Context, runID string) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("run_id", "==", runID).Limit(10)
	return queryAll[scheduler.Run](ctx, s, q, "runs "+runID)
}

// CountActiveRuns counts a DAG's queued and running runs.
func (s *Store) CountActiveRuns(ctx context.Context, dagID string) (int, error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).Where("state", "in", []string{string(scheduler.RunQueued), string(scheduler.RunRunning)})
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	s.read(1)
	if err != nil {
		return 0, mapErr("fsstore: count active runs of "+dagID, err)
	}
	return intOf(res.Data()["n"]), nil
}

// DueRuns reads runs whose tick_due_at has passed.
func (s *Store) DueRuns(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("tick_due_at", "<=", now).OrderBy("tick_due_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.Run](ctx, s, q, "due runs")
}

// ---- Task instances

// CreateTaskInstances creates a run's task instances; those that already exist are left as
// they are, so a run whose creator died half-way can be completed by anyone. Each must carry
// its expire_at.
func (s *Store) CreateTaskInstances(ctx context.Context, tis []*scheduler.TaskInstance) error {
	for _, ti := range tis {
		if err := needExpiry(ColTaskInstances, ti.Key(), ti.ExpireAt); err != nil {
			return err
		}
	}
	bw := s.fs.BulkWriter(ctx)
	jobs := make([]*firestore.BulkWriterJob, 0, len(tis))
	for _, ti := range tis {
		j, err := bw.Create(s.fs.Collection(ColTaskInstances).Doc(ti.Key()), ti)
		if err != nil {
			bw.End()
			return fmt.Errorf("fsstore: create task instance %s: %w", ti.Key(), err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for i, j := range jobs {
		_, err := j.Results()
		s.wrote(ColTaskInstances, tis[i].Key(), err)
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return mapErr("fsstore: create task instance "+tis[i].Key(), err)
		}
	}
	return nil
}

// GetTaskInstance reads a task instance.
func (s *Store) GetTaskInstance(ctx context.Context, dagID, runID, taskID string) (*Versioned[scheduler.TaskInstance], error) {
	return get[scheduler.TaskInstance](ctx, s, ColTaskInstances, scheduler.TaskKey(dagID, runID, taskID))
}

// UpdateTaskInstanceIf changes fields of a task instance if it is unchanged since updateTime.
func (s *Store) UpdateTaskInstanceIf(ctx context.Context, ti *scheduler.TaskInstance, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColTaskInstances, ti.Key(), updateTime, fields)
}

// ListTaskInstances reads a run's task instances.
func (s *Store) ListTaskInstances(ctx context.Context, dagID, runID string) ([]Versioned[scheduler.TaskInstance], error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", scheduler.RunKey(dagID, runID))
	return queryAll[scheduler.TaskInstance](ctx, s, q, "task instances of "+runID)
}

// DueTaskInstances reads task instances whose tick_due_at has passed.
func (s *Store) DueTaskInstances(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.TaskInstance], error) {
	q := s.fs.Collection(ColTaskInstances).Where("tick_due_at", "<=", now).OrderBy("tick_due_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.TaskInstance](ctx, s, q, "due task instances")
}

// CountUpstream counts, by state, the instances of the run that list taskID downstream: one
// aggregation query (Firestore allows five aggregations in one), whatever the run's size.
// Total is left for the caller, who knows how many upstream tasks there are.
func (s *Store) CountUpstream(ctx context.Context, runKey, taskID string) (scheduler.UpstreamCounts, error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", runKey).Where("downstream", "array-contains", taskID)
	res, err := q.NewAggregationQuery().WithSum("finished", "done").WithSum("c_success", "ok").
		WithSum("c_failed", "failed").WithSum("c_upstream_failed", "upf").WithSum("c_skipped", "skipped").Get(ctx)
	s.read(1)
	if err != nil {
		return scheduler.UpstreamCounts{}, mapErr("fsstore: count upstream of "+taskID, err)
	}
	d := res.Data()
	return scheduler.UpstreamCounts{
		Done: intOf(d["done"]), Success: intOf(d["ok"]),
		Failed: intOf(d["failed"]), UpstreamFailed: intOf(d["upf"]), Skipped: intOf(d["skipped"]),
	}, nil
}

// RunProgress counts a run's task instances: all, finished, and finished badly.
func (s *Store) RunProgress(ctx context.Context, runKey string) (total, finished, bad int, err error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", runKey)
	res, err := q.NewAggregationQuery().WithCount("n").WithSum("finished", "done").WithSum("bad", "bad").Get(ctx)
	s.read(1)
	if err != nil {
		return 0, 0, 0, mapErr("fsstore: count progress of "+runKey, err)
	}
	d := res.Data()
	return intOf(d["n"]), intOf(d["done"]), intOf(d["bad"]), nil
}

func sortAttempts(as []Versioned[scheduler.Attempt]) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].Rec.StartedAt.Before(as[j-1].Rec.StartedAt); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

func intOf(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

// ---- Backfills

// ColBackfills holds backfills.
const ColBackfills = "backfills"

// CreateBackfill stores a new backfill; ErrExists means the same one is already there.
func (s *Store) CreateBackfill(ctx context.Context, b *scheduler.Backfill) error {
	return s.create(ctx, ColBackfills, b.ID, b)
}

// GetBackfill reads a backfill.
func (s *Store) GetBackfill(ctx context.Context, id string) (*Versioned[scheduler.Backfill], error) {
	return get[scheduler.Backfill](ctx, s, ColBackfills, id)
}

// UpdateBackfillIf changes fields of a backfill if it is unchanged since updateTime.
func (s *Store) UpdateBackfillIf(ctx context.Context, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColBackfills, id, updateTime, fields)
}

// ListBackfills reads a DAG's backfills, newest first.
func (s *Store) ListBackfills(ctx context.Context, dagID string) ([]Versioned[scheduler.Backfill], error) {
	q := s.fs.Collection(ColBackfills).Where("dag_id", "==", dagID).OrderBy("created_at", firestore.Desc).Limit(50)
	return queryAll[scheduler.Backfill](ctx, s, q, "backfills of "+dagID)
}

// DueBackfills reads running backfills the tick must advance.
func (s *Store) DueBackfills(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.Backfill], error) {
	q := s.fs.Collection(ColBackfills).Where("tick_due_at", "<=", now).OrderBy("tick_due_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.Backfill](ctx, s, q, "due backfills")
}

// CountBackfillRuns counts a backfill's runs in the given states.
func (s *Store) CountBackfillRuns(ctx context.Context, backfillID string, states []string) (int, error) {
	q := s.fs.Collection(ColRuns).Where("backfill_id", "==", backfillID).Where("state", "in", states)
	res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
	s.read(1)
	if err != nil {
		return 0, mapErr("fsstore: count runs of backfill "+backfillID, err)
	}
	return intOf(res.Data()["n"]), nil
}

// RunsAt reads a DAG's runs for one logical date (its scheduled or backfill run, and any
// manual runs with that date).
func (s *Store) RunsAt(ctx context.Context, dagID string, logical time.Time) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).Where("logical_date", "==", logical.UTC().Truncate(time.Microsecond))
	return queryAll[scheduler.Run](ctx, s, q.Limit(20), "runs of "+dagID+" at "+logical.UTC().Format(time.RFC3339))
}

// AdjacentRun reads the run of a DAG right before (or after) a logical date, or nil.
func (s *Store) AdjacentRun(ctx context.Context, dagID string, logical time.Time, before bool) (*Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID)
	if before {
		q = q.Where("logical_date", "<", logical).OrderBy("logical_date", firestore.Desc)
	} else {
		q = q.Where("logical_date", ">", logical).OrderBy("logical_date", firestore.Asc)
	}
	out, err := queryAll[scheduler.Run](ctx, s, q.Limit(1), "adjacent run of "+dagID)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return &out[0], nil
}

// CountActiveTasks counts the instances holding a slot of a run's max_active_tasks (queued
// or running, by their c_active counter).
func (s *Store) CountActiveTasks(ctx context.Context, runKey string) (int, error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", runKey)
	res, err := q.NewAggregationQuery().WithSum("c_active", "n").Get(ctx)
	s.read(1)
	if err != nil {
		return 0, mapErr("fsstore: count active tasks of "+runKey, err)
	}
	return intOf(res.Data()["n"]), nil
}

// MapInstances reads the instances of a for_each task in a run.
func (s *Store) MapInstances(ctx context.Context, runKey, taskID string) ([]Versioned[scheduler.TaskInstance], error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", runKey).Where("downstream", "array-contains", scheduler.MapMarker(taskID))
	return queryAll[scheduler.TaskInstance](ctx, s, q, "instances of "+taskID)
}

// DeleteTaskInstance deletes a task instance if it is unchanged since updateTime (a cleared
// for_each task's instances; their attempts stay as history).
func (s *Store) DeleteTaskInstance(ctx context.Context, ti *scheduler.TaskInstance, updateTime time.Time) error {
	_, err := s.fs.Collection(ColTaskInstances).Doc(ti.Key()).Delete(ctx, firestore.LastUpdateTime(updateTime))
	s.wrote(ColTaskInstances, ti.Key(), err)
	return mapErr("fsstore: delete task instance "+ti.Key(), err)
}

// ScheduledTasks reads up to limit of a run's instances waiting for a slot.
func (s *Store) ScheduledTasks(ctx context.Context, runKey string, limit int) ([]Versioned[scheduler.TaskInstance], error) {
	q := s.fs.Collection(ColTaskInstances).Where("run_key", "==", runKey).Where("state", "==", string(scheduler.TaskScheduled)).Limit(limit)
	return queryAll[scheduler.TaskInstance](ctx, s, q, "scheduled tasks of "+runKey)
}

// ---- Variables

// ColVariables holds variables: non-secret values set from the CLI and UI.
const ColVariables = "variables"

// Variable is one variable.
type Variable struct {
	Name      string    `firestore:"name" json:"name"`
	Value     string    `firestore:"value" json:"value"`
	UpdatedAt time.Time `firestore:"updated_at" json:"updated_at"`
}

// SetVariable stores a variable.
func (s *Store) SetVariable(ctx context.Context, v Variable) error {
	_, err := s.fs.Collection(ColVariables).Doc(v.Name).Set(ctx, v)
	s.wrote(ColVariables, v.Name, err)
	return mapErr("fsstore: set variable "+v.Name, err)
}

// GetVariable reads a variable; ErrNotFound when it is not set.
func (s *Store) GetVariable(ctx context.Context, name string) (*Variable, error) {
	v, err := get[Variable](ctx, s, ColVariables, name)
	if err != nil {
		return nil, err
	}
	return &v.Rec, nil
}

// ListVariables reads every variable, by name.
func (s *Store) ListVariables(ctx context.Context) ([]Variable, error) {
	vs, err := queryAll[Variable](ctx, s, s.fs.Collection(ColVariables).OrderBy("name", firestore.Asc), "variables")
	out := make([]Variable, len(vs))
	for i, v := range vs {
		out[i] = v.Rec
	}
	return out, err
}

// DeleteVariable removes a variable; ErrNotFound when it was not set.
func (s *Store) DeleteVariable(ctx context.Context, name string) error {
	if !CanBeDocID(name) {
		return fmt.Errorf("fsstore: delete variable %s: %w", name, ErrNotFound)
	}
	_, err := s.fs.Collection(ColVariables).Doc(name).Delete(ctx, firestore.Exists)
	s.wrote(ColVariables, name, err)
	return mapErr("fsstore: delete variable "+name, err)
}

// PrevSuccessRun reads the DAG's latest successful run before a logical date, or nil.
func (s *Store) PrevSuccessRun(ctx context.Context, dagID string, before time.Time) (*Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("dag_id", "==", dagID).Where("state", "==", string(scheduler.RunSuccess)).
		Where("logical_date", "<", before).OrderBy("logical_date", firestore.Desc).Limit(1)
	out, err := queryAll[scheduler.Run](ctx, s, q, "previous successful run of "+dagID)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return &out[0], nil
}
