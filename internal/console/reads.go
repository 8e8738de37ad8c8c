package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// Page tokens are opaque to callers: a cursor, base64url-encoded.
func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return "", Errorf(CodeBadRequest, "page_token %q is not a token this API handed out", tok)
	}
	return string(b), nil
}

// specMeta is what the DAG list shows of a version beyond its record.
type specMeta struct {
	description string
	tags        []string
}

func location(tz string) *time.Location {
	if loc, err := time.LoadLocation(tz); err == nil && tz != "" {
		return loc
	}
	return time.UTC
}

func briefOf(r scheduler.Run, loc *time.Location) RunBrief {
	b := RunBrief{RunID: r.RunID, RunType: string(r.RunType), State: string(r.State), LogicalDate: r.LogicalDate.In(loc),
		DataIntervalEnd: r.IntervalEnd.In(loc)}
	if r.StartedAt != nil {
		b.StartedAt = ptr(r.StartedAt.In(loc))
	}
	if r.EndedAt != nil {
		b.EndedAt = ptr(r.EndedAt.In(loc))
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func (c *Console) summaryOf(rec scheduler.DAGRecord) DAGSummary {
	loc := location(rec.Timezone)
	s := DAGSummary{
		DagID: rec.DagID, Owner: rec.Owner, Paused: rec.Paused, Active: rec.Active, Schedule: rec.Schedule,
		Timezone: rec.Timezone, Version: rec.Version, File: rec.File, RecentRuns: []RunBrief{},
	}
	if rec.Active && !rec.Paused && rec.NextStart != nil && rec.NextEnd != nil {
		s.NextLogicalDate, s.NextRunAt = ptr(rec.NextStart.In(loc)), ptr(rec.NextEnd.In(loc))
	}
	if rec.TickLate != nil && c.now().Sub(rec.TickLate.At) < 24*time.Hour {
		s.TickLate = rec.TickLate
	}
	c.metaMu.Lock()
	if m, ok := c.meta[rec.DagID+"~"+rec.Version]; ok {
		s.Description, s.Tags = m.description, m.tags
	}
	c.metaMu.Unlock()
	return s
}

// loadMeta reads, in one call, the versions of recs whose description and tags are not
// cached yet (versions never change, so each is read once per process).
func (c *Console) loadMeta(ctx context.Context, recs []scheduler.DAGRecord) error {
	var keys [][2]string
	c.metaMu.Lock()
	for _, r := range recs {
		if _, ok := c.meta[r.DagID+"~"+r.Version]; !ok {
			keys = append(keys, [2]string{r.DagID, r.Version})
		}
	}
	c.metaMu.Unlock()
	vs, err := c.store.VersionsOf(ctx, keys)
	if err != nil {
		return err
	}
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	for _, v := range vs {
		var d struct {
			Description string   `json:"description"`
			Tags        []string `json:"tags"`
		}
		_ = json.Unmarshal([]byte(v.SpecJSON), &d)
		c.meta[v.DagID+"~"+v.Version] = specMeta{description: d.Description, tags: d.Tags}
	}
	return nil
}

// ListDAGs returns a page of the DAG list (ids starting with q.Search), each DAG with its
// next run and its latest runs, and, on the first page, the import errors. It costs one
// query for the DAGs (whose documents keep their latest runs: engine.NoteRun) and one
// batched read of the versions not seen before; DAGs whose documents keep no latest runs yet
// cost one more query per 30 of them. Never one query per DAG.
func (c *Console) ListDAGs(ctx context.Context, who Caller, q DAGQuery) (DAGPage, error) {
	if err := c.authRead(ctx, who); err != nil {
		return DAGPage{}, err
	}
	after, err := decodeToken(q.PageToken)
	if err != nil {
		return DAGPage{}, err
	}
	limit := pageLimit(q.Limit)
	vs, err := c.store.DAGsPage(ctx, strings.TrimSpace(q.Search), after, limit+1)
	if err != nil {
		return DAGPage{}, AsError(err)
	}
	page := DAGPage{DAGs: []DAGSummary{}, ImportErrors: []ImportError{}}
	if len(vs) > limit {
		vs = vs[:limit]
		page.NextPageToken = encodeToken(vs[limit-1].Rec.DagID)
	}
	recs := make([]scheduler.DAGRecord, len(vs))
	var unkept []string // DAGs whose document keeps no recent runs (yet): one query per 30
	for i, v := range vs {
		recs[i] = v.Rec.DAGRecord
		if !v.Rec.RecentKept {
			unkept = append(unkept, v.Rec.DagID)
		}
	}
	if err := c.loadMeta(ctx, recs); err != nil {
		return DAGPage{}, AsError(err)
	}
	byDAG := map[string][]RunBrief{}
	if len(unkept) > 0 {
		runs, err := c.store.RecentRuns(ctx, unkept, c.recent)
		if err != nil {
			return DAGPage{}, AsError(err)
		}
		for _, r := range runs {
			if len(byDAG[r.DagID]) < c.recent {
				byDAG[r.DagID] = append(byDAG[r.DagID], briefOf(r, time.UTC))
			}
		}
	}
	for i, v := range vs {
		s := c.summaryOf(recs[i])
		loc := location(recs[i].Timezone)
		if v.Rec.RecentKept {
			for _, r := range v.Rec.Recent {
				if len(s.RecentRuns) < c.recent {
					s.RecentRuns = append(s.RecentRuns, RunBrief{RunID: r.RunID, RunType: r.RunType, State: r.State, LogicalDate: r.LogicalDate.In(loc)})
				}
			}
		}
		for _, r := range byDAG[recs[i].DagID] {
			r.LogicalDate = r.LogicalDate.In(loc)
			s.RecentRuns = append(s.RecentRuns, r)
		}
		page.DAGs = append(page.DAGs, s)
	}
	if q.PageToken == "" && c.importErrors != nil {
		ies, err := c.importErrors(ctx)
		if err != nil {
			page.ImportErrors = append(page.ImportErrors, ImportError{Message: "could not check the DAG files: " + err.Error()})
		} else if ies != nil {
			page.ImportErrors = ies
		}
	}
	return page, nil
}

// DirImportErrors returns an ImportErrors function that loads the DAG files under dir (the
// local DAG folder) and reports those that do not load, by their paths relative to dir.
func DirImportErrors(dir string, opts dag.Options) func(ctx context.Context) ([]ImportError, error) {
	return func(ctx context.Context) ([]ImportError, error) {
		res, err := dag.LoadDir(dir, opts)
		if err != nil {
			return nil, err
		}
		out := []ImportError{}
		for _, p := range res.Problems() {
			ie := importError(p)
			if rel, err := filepath.Rel(dir, p.File); err == nil && filepath.IsLocal(rel) {
				ie.File = filepath.ToSlash(rel)
			}
			out = append(out, ie)
		}
		return out, nil
	}
}

func importError(p dag.Problem) ImportError {
	return ImportError{File: p.File, Line: p.Line, Field: p.Field, Message: p.Msg, Hint: p.Hint}
}

func summarizeTasks(d *dag.DAG) []TaskSummary {
	down := d.Downstream()
	out := make([]TaskSummary, 0, len(d.Tasks))
	for _, t := range d.Tasks {
		out = append(out, TaskSummary{
			ID: t.ID, Type: t.Type, Upstream: nonNil(t.Needs), Downstream: nonNil(down[t.ID]),
			TriggerRule: t.TriggerRule, Retries: t.Retries, ForEach: t.ForEach != nil, Line: t.Line,
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DAG returns a DAG's page: its record, tasks, source, deployed version and latest runs.
func (c *Console) DAG(ctx context.Context, who Caller, dagID string) (*DAGDetail, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	v, err := c.getDAG(ctx, dagID)
	if err != nil {
		return nil, err
	}
	ver, err := c.store.GetVersion(ctx, dagID, v.Rec.Version)
	if err != nil {
		return nil, AsError(err)
	}
	var d dag.DAG
	if err := json.Unmarshal([]byte(ver.SpecJSON), &d); err != nil {
		return nil, Errorf(CodeInternal, "DAG %s version %s does not decode: %v", dagID, v.Rec.Version, err)
	}
	c.metaMu.Lock()
	c.meta[dagID+"~"+v.Rec.Version] = specMeta{description: d.Description, tags: d.Tags}
	c.metaMu.Unlock()
	out := &DAGDetail{
		DAGSummary: c.summaryOf(v.Rec), Catchup: d.Catchup, MaxActiveRuns: d.MaxActiveRuns, Params: d.Params,
		Tasks: summarizeTasks(&d), Source: ver.Source, DeployedAt: ver.CreatedAt, Bundle: ver.Bundle,
	}
	runs, err := c.store.ListRuns(ctx, dagID, c.recent)
	if err != nil {
		return nil, AsError(err)
	}
	loc := location(v.Rec.Timezone)
	for _, r := range runs {
		out.RecentRuns = append(out.RecentRuns, briefOf(r.Rec, loc))
	}
	return out, nil
}

// Grid returns runs × tasks: the current version's tasks in file order (then any task only
// older runs have), and up to q.Runs runs, newest first. It costs the DAG, its runs (one
// query), and the task instances (one query per 30 runs, for_each instances left out) of
// the runs whose documents don't keep their cells: a finished run's cells are kept on its
// document the first time they are read (or by engine.NoteRun), so polling a grid reads one
// document per run.
func (c *Console) Grid(ctx context.Context, who Caller, dagID string, q GridQuery) (*Grid, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	v, err := c.getDAG(ctx, dagID)
	if err != nil {
		return nil, err
	}
	spec, err := c.eng.Spec(ctx, dagID, v.Rec.Version)
	if err != nil {
		return nil, AsError(err)
	}
	n := q.Runs
	if n <= 0 {
		n = 25
	}
	n = min(n, 100)
	after, err := decodeToken(q.Before)
	if err != nil {
		return nil, err
	}
	runs, err := c.store.GridRunsPage(ctx, dagID, after, n+1)
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, Errorf(CodeBadRequest, "before %q names a run that no longer exists; start from the newest", q.Before)
	}
	if err != nil {
		return nil, AsError(err)
	}
	g := &Grid{DagID: dagID, Tasks: summarizeTasks(spec), Runs: []GridRun{}}
	if len(runs) > n {
		runs = runs[:n]
		g.NextBefore = encodeToken(runs[n-1].Rec.Key())
	}
	// A finished run keeps its cells on its document (engine.NoteRun); the others' cells are
	// their task instances, read with one query per 30 runs.
	var keys []string
	var tis []scheduler.TaskInstance
	for _, r := range runs {
		if kept(r.Rec) {
			for _, cr := range r.Rec.Cells {
				tis = append(tis, scheduler.TaskInstance{DagID: r.Rec.DagID, RunID: r.Rec.RunID, RunKey: r.Rec.Key(), TaskID: cr.TaskID,
					State: scheduler.TaskState(cr.State), TryNumber: cr.Try, AttemptID: cr.AttemptID, MapCount: cr.MapCount})
			}
			continue
		}
		keys = append(keys, r.Rec.Key())
	}
	if len(keys) > 0 {
		more, err := c.store.GridInstances(ctx, keys)
		if err != nil {
			return nil, AsError(err)
		}
		tis = append(tis, more...)
		c.keepCells(ctx, runs, more)
	}
	col := map[string]int{}
	for i, t := range g.Tasks {
		col[t.ID] = i
	}
	var extra []string
	for _, ti := range tis {
		if _, ok := col[ti.TaskID]; !ok {
			col[ti.TaskID] = -1
			extra = append(extra, ti.TaskID)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		col[id] = len(g.Tasks)
		g.Tasks = append(g.Tasks, TaskSummary{ID: id, Upstream: []string{}, Downstream: []string{}})
	}
	row := map[string]int{}
	loc := location(v.Rec.Timezone)
	for i, r := range runs {
		row[r.Rec.Key()] = i
		g.Runs = append(g.Runs, GridRun{RunBrief: briefOf(r.Rec.Run, loc), Cells: make([]GridCell, len(g.Tasks))})
	}
	for _, ti := range tis {
		i, ok := row[ti.RunKey]
		if !ok {
			i, ok = row[scheduler.RunKey(ti.DagID, ti.RunID)]
		}
		if !ok {
			continue
		}
		g.Runs[i].Cells[col[ti.TaskID]] = GridCell{State: string(ti.State), Try: ti.TryNumber, AttemptID: ti.AttemptID, MapCount: ti.MapCount}
	}
	return g, nil
}

// kept reports whether a run's document holds its current cells.
func kept(r fsstore.RunWithCells) bool { return r.CellsValid() }

// keepCells stores the cells of the finished runs just read from their task instances on
// their documents, so the next grid reads one document per finished run (best effort: a run
// changed meanwhile is left for the next time).
func (c *Console) keepCells(ctx context.Context, runs []fsstore.Versioned[fsstore.RunWithCells], tis []scheduler.TaskInstance) {
	byRun := map[string][]fsstore.CellRec{}
	for _, ti := range tis {
		k := scheduler.RunKey(ti.DagID, ti.RunID)
		byRun[k] = append(byRun[k], fsstore.CellRec{TaskID: ti.TaskID, State: string(ti.State), Try: ti.TryNumber, AttemptID: ti.AttemptID, MapCount: ti.MapCount})
	}
	for _, r := range runs {
		if r.Rec.CellsValid() || !r.Rec.State.Finished() || r.Rec.EndedAt == nil || len(byRun[r.Rec.Key()]) == 0 {
			continue
		}
		_ = c.store.KeepRunCells(ctx, &r.Rec.Run, r.UpdateTime, byRun[r.Rec.Key()])
	}
}

// Runs returns a page of a DAG's runs, newest first.
func (c *Console) Runs(ctx context.Context, who Caller, dagID string, q PageQuery) (RunPage, error) {
	if err := c.authRead(ctx, who); err != nil {
		return RunPage{}, err
	}
	v, err := c.getDAG(ctx, dagID)
	if err != nil {
		return RunPage{}, err
	}
	after, err := decodeToken(q.PageToken)
	if err != nil {
		return RunPage{}, err
	}
	limit := pageLimit(q.Limit)
	runs, err := c.store.RunsPage(ctx, dagID, after, limit+1)
	if errors.Is(err, fsstore.ErrNotFound) {
		return RunPage{}, Errorf(CodeBadRequest, "page_token names a run that no longer exists; start from the first page")
	}
	if err != nil {
		return RunPage{}, AsError(err)
	}
	page := RunPage{Runs: []RunBrief{}}
	if len(runs) > limit {
		runs = runs[:limit]
		page.NextPageToken = encodeToken(runs[limit-1].Rec.Key())
	}
	loc := location(v.Rec.Timezone)
	for _, r := range runs {
		page.Runs = append(page.Runs, briefOf(r.Rec, loc))
	}
	return page, nil
}

func instanceView(ti scheduler.TaskInstance) TaskInstanceView {
	return TaskInstanceView{
		TaskID: ti.TaskID, Type: ti.Type, State: string(ti.State), Try: ti.TryNumber, MaxTries: ti.MaxTries,
		AttemptID: ti.AttemptID, Error: ti.Error, QueuedAt: ti.QueuedAt, StartedAt: ti.StartedAt, EndedAt: ti.EndedAt,
		MapCount: ti.MapCount, MapIndex: ti.MapIndex,
	}
}

func attemptView(a scheduler.Attempt, ti *scheduler.TaskInstance) AttemptView {
	v := AttemptView{
		AttemptID: a.ID, TaskID: a.TaskID, Try: a.TryNumber, State: string(a.State), Worker: a.Worker,
		StartedAt: a.StartedAt, EndedAt: a.EndedAt, ExitCode: a.ExitCode,
	}
	if ti != nil && ti.AttemptID == a.ID {
		v.QueuedAt = ti.QueuedAt
	}
	if a.State == scheduler.AttemptRunning && !a.LeaseExpiresAt.IsZero() {
		v.LeaseExpiresAt = ptr(a.LeaseExpiresAt)
	}
	return v
}

// Run returns a run with its task instances (in the DAG file's order, for_each instances
// after their task) and every attempt, for the Gantt chart.
func (c *Console) Run(ctx context.Context, who Caller, dagID, runID string) (*RunDetail, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	rv, err := c.getRun(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	r := rv.Rec
	tis, err := c.runInstances(ctx, r)
	if err != nil {
		return nil, err
	}
	ats, err := c.store.RunAttempts(ctx, dagID, r.RunID)
	if err != nil {
		return nil, AsError(err)
	}
	out := &RunDetail{
		RunBrief: briefOf(r, time.UTC), DagID: dagID, Version: r.Version, DataIntervalStart: r.IntervalStart,
		DataIntervalEnd: r.IntervalEnd, BackfillID: r.BackfillID, Tasks: []TaskInstanceView{}, Attempts: []AttemptView{},
	}
	if r.Conf != "" {
		out.Conf = json.RawMessage(r.Conf)
	}
	if ver, err := c.store.GetVersion(ctx, dagID, r.Version); err == nil {
		out.Bundle = ver.Bundle
	}
	byTask := map[string]*scheduler.TaskInstance{}
	for i := range tis {
		out.Tasks = append(out.Tasks, instanceView(tis[i].Rec))
		byTask[tis[i].Rec.TaskID] = &tis[i].Rec
	}
	for _, a := range ats {
		out.Attempts = append(out.Attempts, attemptView(a.Rec, byTask[a.Rec.TaskID]))
	}
	return out, nil
}

// runInstances reads a run's task instances in the DAG file's order, for_each instances after
// their task; a task not started yet (no instance document) is there, `none`.
func (c *Console) runInstances(ctx context.Context, r scheduler.Run) ([]fsstore.Versioned[scheduler.TaskInstance], error) {
	tis, err := c.eng.RunInstances(ctx, r)
	if err != nil {
		return nil, AsError(err)
	}
	pos := map[string]int{}
	if spec, err := c.eng.Spec(ctx, r.DagID, r.Version); err == nil {
		for i, t := range spec.Tasks {
			pos[t.ID] = i
		}
	}
	sortInstances(tis, pos)
	return tis, nil
}

// RunTasks returns a run's task instances.
func (c *Console) RunTasks(ctx context.Context, who Caller, dagID, runID string) ([]TaskInstanceView, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	rv, err := c.getRun(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	tis, err := c.runInstances(ctx, rv.Rec)
	if err != nil {
		return nil, err
	}
	out := []TaskInstanceView{}
	for _, ti := range tis {
		out = append(out, instanceView(ti.Rec))
	}
	return out, nil
}

func sortInstances(tis []fsstore.Versioned[scheduler.TaskInstance], pos map[string]int) {
	sort.SliceStable(tis, func(i, j int) bool { return scheduler.InstanceLess(pos, tis[i].Rec.TaskID, tis[j].Rec.TaskID) })
}

// taskAttempts reads a task instance and its attempts: not_found for an unknown run or task.
func (c *Console) taskAttempts(ctx context.Context, dagID, runID, taskID string) (*scheduler.TaskInstance, []fsstore.Versioned[scheduler.Attempt], error) {
	rv, err := c.getRun(ctx, dagID, runID)
	if err != nil {
		return nil, nil, err
	}
	ti, err := c.eng.TaskInstance(ctx, dagID, rv.Rec.RunID, taskID) // `none` for a task not started yet
	if errors.Is(err, fsstore.ErrNotFound) {
		return nil, nil, Errorf(CodeNotFound, "run %s/%s has no task %q", dagID, rv.Rec.RunID, taskID)
	}
	if err != nil {
		return nil, nil, AsError(err)
	}
	return &ti.Rec, fsstore.AttemptsOf(ti), nil // the attempts live on the instance
}

// TaskDetail is a task instance of a run with its attempts, oldest first.
type TaskDetail struct {
	Instance TaskInstanceView `json:"instance"`
	Attempts []AttemptView    `json:"attempts"`
}

// Task returns one task instance of a run and its attempts: what a task's page shows,
// without reading the rest of the run.
func (c *Console) Task(ctx context.Context, who Caller, dagID, runID, taskID string) (*TaskDetail, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	ti, ats, err := c.taskAttempts(ctx, dagID, runID, taskID)
	if err != nil {
		return nil, err
	}
	out := &TaskDetail{Instance: instanceView(*ti), Attempts: []AttemptView{}}
	for _, a := range ats {
		out.Attempts = append(out.Attempts, attemptView(a.Rec, ti))
	}
	return out, nil
}

// Attempts returns a task's attempts in a run, oldest first.
func (c *Console) Attempts(ctx context.Context, who Caller, dagID, runID, taskID string) ([]AttemptView, error) {
	t, err := c.Task(ctx, who, dagID, runID, taskID)
	if err != nil {
		return nil, err
	}
	return t.Attempts, nil
}

// findAttempt finds a try of a task: try 0 means the latest.
func (c *Console) findAttempt(ctx context.Context, dagID, runID, taskID string, try int) (*scheduler.TaskInstance, *scheduler.Attempt, error) {
	ti, ats, err := c.taskAttempts(ctx, dagID, runID, taskID)
	if err != nil {
		return nil, nil, err
	}
	var found *scheduler.Attempt
	tries := []string{}
	for i := range ats {
		tries = append(tries, strconv.Itoa(ats[i].Rec.TryNumber))
		n := ats[i].Rec.TryNumber
		if n == try || (try == 0 && (found == nil || n >= found.TryNumber)) {
			found = &ats[i].Rec // the latest attempt of that try (a republished one)
		}
	}
	if found == nil {
		if len(tries) == 0 {
			return nil, nil, Errorf(CodeNotFound, "task %s has not started yet in %s/%s", taskID, dagID, ti.RunID)
		}
		return nil, nil, Errorf(CodeNotFound, "task %s of %s/%s has no try %d (tries: %s)", taskID, dagID, ti.RunID, try, strings.Join(tries, ", "))
	}
	return ti, found, nil
}

func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// Attempt returns one try of a task (try 0: the latest): its rendered arguments, XCom, error
// and log reference, all as the worker stored them (secrets masked).
func (c *Console) Attempt(ctx context.Context, who Caller, dagID, runID, taskID string, try int) (*AttemptDetail, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	ti, a, err := c.findAttempt(ctx, dagID, runID, taskID, try)
	if err != nil {
		return nil, err
	}
	return &AttemptDetail{
		AttemptView: attemptView(*a, ti), DagID: dagID, RunID: a.RunID, MaxTries: ti.MaxTries,
		Rendered: rawJSON(a.Rendered), XCom: rawJSON(a.XCom), Error: a.Error, LogRef: a.LogRef,
		Current: ti.AttemptID == a.ID,
	}, nil
}

// Log returns the entries of a try's log (try 0: the latest) after the cursor (0 from the
// start). A log past retention is Expired, not an error.
func (c *Console) Log(ctx context.Context, who Caller, dagID, runID, taskID string, try int, after int64) (LogChunk, error) {
	if err := c.authRead(ctx, who); err != nil {
		return LogChunk{}, err
	}
	ti, a, err := c.findAttempt(ctx, dagID, runID, taskID, try)
	if err != nil {
		return LogChunk{}, err
	}
	out := LogChunk{Entries: []LogEntry{}, Next: after}
	if c.logs == nil {
		out.Unavailable, out.Done = "this server reads no logs", a.State.Finished()
		return out, nil
	}
	const limit = 1000
	q := LogQuery{
		Ref: a.LogRef, DagID: dagID, RunID: a.RunID, TaskID: taskID, Try: a.TryNumber, Started: a.StartedAt, After: after, Limit: limit,
	}
	// The try's earlier attempts (a deferred task's pokes), oldest first, from the instance.
	for _, o := range fsstore.AttemptsOf(&fsstore.Versioned[scheduler.TaskInstance]{Rec: *ti}) {
		if o.Rec.TryNumber == a.TryNumber && o.Rec.ID != a.ID && o.Rec.LogRef != "" {
			q.Refs = append(q.Refs, o.Rec.LogRef)
		}
	}
	if len(q.Refs) > 0 {
		q.Refs = append(q.Refs, a.LogRef)
	}
	es, next, err := c.logs.ReadLog(ctx, q)
	switch {
	case errors.Is(err, ErrLogExpired):
		out.Expired, out.Done = true, a.State.Finished()
		return out, nil
	case errors.Is(err, ErrNoLog):
		out.Unavailable, out.Done = err.Error(), a.State.Finished()
		return out, nil
	case err != nil:
		return LogChunk{}, AsError(fmt.Errorf("read the log of %s try %d: %w", taskID, a.TryNumber, err))
	}
	if es != nil {
		out.Entries = es
	}
	out.Next = next
	out.Done = a.State.Finished() && len(es) < limit
	return out, nil
}

// Variables lists the variables (viewer: they are not secret; setting one is the admin's).
func (c *Console) Variables(ctx context.Context, who Caller) ([]fsstore.Variable, error) {
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Viewer, "", access.Target{}); err != nil {
		return nil, err
	}
	vs, err := c.store.ListVariables(ctx)
	if err != nil {
		return nil, AsError(err)
	}
	if vs == nil {
		vs = []fsstore.Variable{}
	}
	return vs, nil
}

// Users lists who holds which role (admin).
func (c *Console) Users(ctx context.Context, who Caller) ([]UserView, error) {
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Admin, "", access.Target{}); err != nil {
		return nil, err
	}
	gs, err := c.access.List(ctx)
	if err != nil {
		return nil, AsError(err)
	}
	out := []UserView{}
	for _, g := range gs {
		out = append(out, UserView{Email: g.Email, Role: g.Role.String(), GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt})
	}
	return out, nil
}

// Me returns who the caller is and the role they hold (any signed-in person may ask).
func (c *Console) Me(ctx context.Context, who Caller) (Me, error) {
	if strings.TrimSpace(who.Email) == "" {
		return Me{}, Errorf(CodeUnauthenticated, "no identity: sign in (or send an ID token as Authorization: Bearer)")
	}
	r, err := c.access.RoleOf(ctx, who.Email)
	if err != nil {
		return Me{}, wrapErr(CodeBadRequest, err)
	}
	return Me{Email: who.Email, Role: r.String()}, nil
}

// Audit returns a page of the audit log, newest first (viewer).
func (c *Console) Audit(ctx context.Context, who Caller, q AuditQuery) (AuditPage, error) {
	if err := c.authRead(ctx, who); err != nil {
		return AuditPage{}, err
	}
	after, err := decodeToken(q.PageToken)
	if err != nil {
		return AuditPage{}, err
	}
	limit := pageLimit(q.Limit)
	es, err := c.store.AuditPage(ctx, q.DagID, after, limit+1)
	if errors.Is(err, fsstore.ErrNotFound) {
		return AuditPage{}, Errorf(CodeBadRequest, "page_token names an entry that no longer exists")
	}
	if err != nil {
		return AuditPage{}, AsError(err)
	}
	page := AuditPage{Entries: es}
	if page.Entries == nil {
		page.Entries = []fsstore.AuditEntry{}
	}
	if len(es) > limit {
		page.Entries = es[:limit]
		page.NextPageToken = encodeToken(es[limit-1].ID)
	}
	return page, nil
}

func backfillView(b scheduler.Backfill) BackfillView {
	return BackfillView{
		BackfillID: b.ID, DagID: b.DagID, From: b.From, To: b.To, Reprocess: b.Reprocess, MaxActiveRuns: b.MaxActiveRuns,
		State: b.State, Total: b.Total, Created: b.Created, Rerun: b.Rerun, Skipped: b.Skipped,
		Considered: b.Created + b.Rerun + b.Skipped, Next: b.Next, CreatedAt: b.CreatedAt, EndedAt: b.EndedAt,
	}
}

// Backfills returns a DAG's backfills, newest first, with their progress.
func (c *Console) Backfills(ctx context.Context, who Caller, dagID string) ([]BackfillView, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	if _, err := c.getDAG(ctx, dagID); err != nil {
		return nil, err
	}
	bs, err := c.store.ListBackfills(ctx, dagID)
	if err != nil {
		return nil, AsError(err)
	}
	out := []BackfillView{}
	for _, b := range bs {
		v := backfillView(b.Rec)
		key := b.Rec.RunsKey() // its progress: only the runs of its latest start
		if v.Finished, err = c.store.CountBackfillRuns(ctx, key, []string{string(scheduler.RunSuccess), string(scheduler.RunFailed)}); err != nil {
			return nil, AsError(err)
		}
		if v.Failed, err = c.store.CountBackfillRuns(ctx, key, []string{string(scheduler.RunFailed)}); err != nil {
			return nil, AsError(err)
		}
		out = append(out, v)
	}
	return out, nil
}

// FindRuns returns the runs with this run id, across DAGs (viewer): how a bare run id is
// looked up. Empty when there is none.
func (c *Console) FindRuns(ctx context.Context, who Caller, runID string) ([]RunRef, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	if strings.TrimSpace(runID) == "" {
		return nil, Errorf(CodeBadRequest, "name a run id")
	}
	runs, err := c.store.FindRuns(ctx, runID)
	if err != nil {
		return nil, AsError(err)
	}
	out := []RunRef{}
	for _, r := range runs {
		out = append(out, RunRef{DagID: r.Rec.DagID, RunID: r.Rec.RunID})
	}
	return out, nil
}
