package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Config is what a Console is built from.
type Config struct {
	Engine *engine.Engine
	Store  *fsstore.Store
	Access *access.Service
	// Logs reads attempts' logs; nil means logs are not available (Log says so).
	Logs LogReader
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ImportErrors returns the DAG files that do not load, shown at the top of the DAG list;
	// nil means none are known (see DirImportErrors for a local DAG folder).
	ImportErrors func(ctx context.Context) ([]ImportError, error)
	// RecentRuns is how many of a DAG's latest runs the DAG list shows (default 10, at most 10).
	RecentRuns int
	// DAGOptions are the DAG parser's options for Deploy; zero means the ones the CLI uses
	// (DefaultDAGOptions).
	DAGOptions dag.Options
	// Bundles gives a bundle's folder, for the code page's files (nil: files not shown).
	Bundles BundleRoots
	// FirstAdmin lets a caller without admin grant admin while no one holds it: how the first
	// admin of a deployment is made. Only the CLI's local mode sets it (its caller has the
	// project's Firestore credentials anyway); a served API never does.
	FirstAdmin bool
}

// Console is the set of operations. It is safe for concurrent use.
type Console struct {
	eng          *engine.Engine
	store        *fsstore.Store
	access       *access.Service
	logs         LogReader
	now          func() time.Time
	importErrors func(ctx context.Context) ([]ImportError, error)
	recent       int
	dagOpts      dag.Options
	bundles      BundleRoots
	firstAdmin   bool

	metaMu sync.Mutex
	meta   map[string]specMeta // dagID~version → what the DAG list shows of a version
}

// New returns a Console.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Store == nil && cfg.Engine != nil {
		cfg.Store = cfg.Engine.Store()
	}
	if cfg.RecentRuns <= 0 || cfg.RecentRuns > 10 {
		cfg.RecentRuns = 10
	}
	if cfg.DAGOptions.ValidateCron == nil && cfg.DAGOptions.CheckArgs == nil && cfg.DAGOptions.TaskTypes == nil {
		cfg.DAGOptions = DefaultDAGOptions()
	}
	return &Console{
		eng: cfg.Engine, store: cfg.Store, access: cfg.Access, logs: cfg.Logs, now: cfg.Now,
		importErrors: cfg.ImportErrors, recent: cfg.RecentRuns, dagOpts: cfg.DAGOptions, meta: map[string]specMeta{},
		bundles: cfg.Bundles, firstAdmin: cfg.FirstAdmin,
	}
}

// Caller is who asks, and through what: From is "ui" or "api"; Addr the client's address.
type Caller struct {
	Email string
	From  string
	Addr  string
}

// ---- Errors

// Error codes, each with its HTTP status.
const (
	CodeNotFound        = "not_found"       // 404
	CodeForbidden       = "forbidden"       // 403
	CodeBadRequest      = "bad_request"     // 400
	CodeConflict        = "conflict"        // 409
	CodeUnauthenticated = "unauthenticated" // 401
	CodeInternal        = "internal"        // 500
)

// Error is what every Console method returns when it fails: a code, the HTTP status that goes
// with it, and a message for a person (what was wrong and how to fix it).
type Error struct {
	Code    string `json:"code"`
	Status  int    `json:"-"`
	Message string `json:"message"`
	// Err is the cause, when there is one (not shown to callers).
	Err error `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func statusOf(code string) int {
	switch code {
	case CodeNotFound:
		return 404
	case CodeForbidden:
		return 403
	case CodeBadRequest:
		return 400
	case CodeConflict:
		return 409
	case CodeUnauthenticated:
		return 401
	}
	return 500
}

// Errorf makes an *Error with a code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Status: statusOf(code), Message: fmt.Sprintf(format, args...)}
}

func wrapErr(code string, err error) *Error {
	return &Error{Code: code, Status: statusOf(code), Message: err.Error(), Err: err}
}

// AsError returns err as an *Error: itself when it is one, forbidden for an access refusal,
// not_found for a missing document, conflict for a lost race, internal otherwise.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, access.ErrDenied):
		return wrapErr(CodeForbidden, err)
	case errors.Is(err, fsstore.ErrNotFound):
		return wrapErr(CodeNotFound, err)
	case errors.Is(err, fsstore.ErrConflict):
		return &Error{Code: CodeConflict, Status: 409, Message: "changed by someone else meanwhile; try again", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeInternal, Status: 500, Message: "the request was cancelled or timed out", Err: err}
	}
	return &Error{Code: CodeInternal, Status: 500, Message: "internal error: " + err.Error(), Err: err}
}

// ---- Reads

// ImportError is a DAG file that does not load, with where and why.
type ImportError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// DAGQuery selects a page of the DAG list: ids starting with Search (an indexed range, so a
// search costs what it shows), at most Limit (default 100, max 500) after PageToken.
type DAGQuery struct {
	Search    string
	Limit     int
	PageToken string
}

// RunBrief is one run as lists show it.
type RunBrief struct {
	RunID       string    `json:"run_id"`
	RunType     string    `json:"run_type"`
	State       string    `json:"state"`
	LogicalDate time.Time `json:"logical_date"`
	// DataIntervalEnd is the end of the run's data interval.
	DataIntervalEnd time.Time  `json:"data_interval_end"`
	StartedAt       *time.Time `json:"started_at,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
}

// DAGSummary is one DAG of the list.
type DAGSummary struct {
	DagID       string   `json:"dag_id"`
	Owner       string   `json:"owner"`
	Paused      bool     `json:"paused"`
	Active      bool     `json:"active"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Schedule    string   `json:"schedule,omitempty"`
	Timezone    string   `json:"timezone"`
	// NextLogicalDate is the logical date of the next scheduled run, and NextRunAt when it is
	// created (its interval's end); both in the DAG's timezone. Nil when paused, removed or
	// not scheduled.
	NextLogicalDate *time.Time `json:"next_logical_date,omitempty"`
	NextRunAt       *time.Time `json:"next_run_at,omitempty"`
	Version         string     `json:"version"`
	File            string     `json:"file"`
	// RecentRuns are the latest runs, newest first (at most Config.RecentRuns).
	RecentRuns []RunBrief `json:"recent_runs"`
	// TickLate is set when, within the last day, a tick reached this DAG more than one
	// schedule period late (and what it skipped without catchup).
	TickLate *scheduler.TickLate `json:"tick_late,omitempty"`
}

// DAGPage is a page of the DAG list.
type DAGPage struct {
	DAGs          []DAGSummary  `json:"dags"`
	NextPageToken string        `json:"next_page_token,omitempty"`
	ImportErrors  []ImportError `json:"import_errors"`
}

// TaskSummary is one task of a DAG's spec.
type TaskSummary struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Upstream    []string `json:"upstream"`
	Downstream  []string `json:"downstream"`
	TriggerRule string   `json:"trigger_rule"`
	Retries     int      `json:"retries"`
	ForEach     bool     `json:"for_each,omitempty"`
	Line        int      `json:"line,omitempty"`
}

// DAGDetail is a DAG's page: its record, its tasks, its source and deployed version.
type DAGDetail struct {
	DAGSummary
	Catchup       bool           `json:"catchup"`
	MaxActiveRuns int            `json:"max_active_runs"`
	Params        map[string]any `json:"params,omitempty"`
	Tasks         []TaskSummary  `json:"tasks"`
	Source        string         `json:"source"`
	DeployedAt    time.Time      `json:"deployed_at"`
	// Bundle is the hash of the folder deployed with the version ("dir:PATH" locally).
	Bundle string `json:"bundle,omitempty"`
}

// GridQuery selects the grid's runs: Runs of them (default 25, at most 100), newest first,
// older than the page token Before (from Grid.NextBefore) when set.
type GridQuery struct {
	Runs   int
	Before string
}

// GridCell is one task in one run.
type GridCell struct {
	State     string `json:"state"`
	Try       int    `json:"try"`
	AttemptID string `json:"attempt_id,omitempty"`
	// MapCount is how many instances a for_each task expanded to.
	MapCount *int `json:"map_count,omitempty"`
}

// GridRun is one column of the grid: a run and its cells, aligned with Grid.Tasks.
type GridRun struct {
	RunBrief
	Cells []GridCell `json:"cells"`
}

// Grid is runs × tasks.
type Grid struct {
	DagID string        `json:"dag_id"`
	Tasks []TaskSummary `json:"tasks"`
	Runs  []GridRun     `json:"runs"`
	// NextBefore is the token for older runs ("" when there are none).
	NextBefore string `json:"next_before,omitempty"`
}

// PageQuery is a page of a list: at most Limit (default 100, max 500) after PageToken.
type PageQuery struct {
	Limit     int
	PageToken string
}

// RunPage is a page of a DAG's runs, newest first.
type RunPage struct {
	Runs          []RunBrief `json:"runs"`
	NextPageToken string     `json:"next_page_token,omitempty"`
}

// TaskInstanceView is one task of a run.
type TaskInstanceView struct {
	TaskID    string     `json:"task_id"`
	Type      string     `json:"type"`
	State     string     `json:"state"`
	Try       int        `json:"try"`
	MaxTries  int        `json:"max_tries"`
	AttemptID string     `json:"attempt_id,omitempty"`
	Error     string     `json:"error,omitempty"`
	QueuedAt  *time.Time `json:"queued_at,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	MapCount  *int       `json:"map_count,omitempty"`
	MapIndex  *int       `json:"map_index,omitempty"`
}

// AttemptView is one attempt (a Gantt bar): QueuedAt is known for a task's current try.
type AttemptView struct {
	AttemptID string     `json:"attempt_id"`
	TaskID    string     `json:"task_id"`
	Try       int        `json:"try"`
	State     string     `json:"state"`
	Worker    string     `json:"worker,omitempty"`
	QueuedAt  *time.Time `json:"queued_at,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	ExitCode  *int       `json:"exit_code,omitempty"`
	// LeaseExpiresAt is when a running attempt's lease ends unless its worker renews it: past
	// it, the worker is likely lost (the lease sweep then retries or fails the task).
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
}

// RunDetail is a run's page.
type RunDetail struct {
	RunBrief
	DagID             string             `json:"dag_id"`
	Version           string             `json:"version"`
	DataIntervalStart time.Time          `json:"data_interval_start"`
	DataIntervalEnd   time.Time          `json:"data_interval_end"`
	Conf              json.RawMessage    `json:"conf,omitempty"`
	BackfillID        string             `json:"backfill_id,omitempty"`
	Tasks             []TaskInstanceView `json:"tasks"`
	Attempts          []AttemptView      `json:"attempts"`
	// Bundle is the hash of the bundle the run's version runs with (its tasks' code).
	Bundle string `json:"bundle,omitempty"`
}

// AttemptDetail is an attempt's page: everything as stored, so secrets are already masked.
type AttemptDetail struct {
	AttemptView
	DagID    string          `json:"dag_id"`
	RunID    string          `json:"run_id"`
	MaxTries int             `json:"max_tries"`
	Rendered json.RawMessage `json:"rendered,omitempty"`
	XCom     json.RawMessage `json:"xcom,omitempty"`
	Error    string          `json:"error,omitempty"`
	LogRef   string          `json:"log_ref,omitempty"`
	// Current is whether this is the task's current attempt.
	Current bool `json:"current"`
}

// LogEntry is one line of an attempt's log (masked by the worker that wrote it).
type LogEntry struct {
	Time     time.Time `json:"time"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
}

// LogChunk is the part of a log after a cursor.
type LogChunk struct {
	Entries []LogEntry `json:"entries"`
	// Next is the cursor to ask with next time.
	Next int64 `json:"next"`
	// Done is true when the attempt has finished (and Entries reached the end of its log).
	Done bool `json:"done"`
	// Expired is true when the log is gone (past retention); Entries is then empty.
	Expired bool `json:"expired"`
	// Unavailable says why no log can be read, when that is so (e.g. no log reader).
	Unavailable string `json:"unavailable,omitempty"`
}

// AuditQuery selects a page of the audit log, newest first; one DAG's entries when DagID is set.
type AuditQuery struct {
	DagID     string
	Limit     int
	PageToken string
}

// AuditPage is a page of the audit log.
type AuditPage struct {
	Entries       []fsstore.AuditEntry `json:"entries"`
	NextPageToken string               `json:"next_page_token,omitempty"`
}

// BackfillView is a backfill with its progress.
type BackfillView struct {
	BackfillID    string `json:"backfill_id"`
	DagID         string `json:"dag_id"`
	From          string `json:"from"`
	To            string `json:"to"`
	Reprocess     string `json:"reprocess"`
	MaxActiveRuns int    `json:"max_active_runs"`
	State         string `json:"state"`
	Total         int    `json:"total"`
	Created       int    `json:"created"`
	Rerun         int    `json:"rerun"`
	Skipped       int    `json:"skipped"`
	// Considered is how many intervals it has handled so far (created, re-run or skipped).
	Considered int `json:"considered"`
	// Finished and Failed count the runs of its latest start that have finished (success or
	// failed) and that failed (two count queries per backfill).
	Finished  int        `json:"finished"`
	Failed    int        `json:"failed"`
	Next      *time.Time `json:"next,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// UserView is one grant.
type UserView struct {
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	GrantedBy string    `json:"granted_by,omitempty"`
	GrantedAt time.Time `json:"granted_at"`
	// Previous is the role held before a grant ("none" when none), set in Grant's answer.
	Previous string `json:"previous,omitempty"`
}

// RunRef names a run: its DAG and its id.
type RunRef struct {
	DagID string `json:"dag_id"`
	RunID string `json:"run_id"`
}

// Me is who the caller is and the role they hold.
type Me struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

// ---- Actions

// Affected is what an action did, or with DryRun what it would do.
type Affected struct {
	DryRun bool   `json:"dry_run"`
	Action string `json:"action"`
	DagID  string `json:"dag_id"`
	RunID  string `json:"run_id,omitempty"`
	// TaskIDs are the tasks affected (cleared, marked).
	TaskIDs []string `json:"task_ids,omitempty"`
	// RunIDs and LogicalDates are the runs affected (trigger, backfill).
	RunIDs       []string `json:"run_ids,omitempty"`
	LogicalDates []string `json:"logical_dates,omitempty"`
	// Summary says it in a sentence, for a confirmation dialog.
	Summary string `json:"summary"`
	// Warnings are things to know before confirming.
	Warnings []string `json:"warnings,omitempty"`
}

// TriggerRequest asks for a manual run. Conf is a JSON object checked against the DAG's
// params; LogicalDate defaults to now.
type TriggerRequest struct {
	DagID       string
	Conf        json.RawMessage
	LogicalDate *time.Time
	DryRun      bool
	// Replace deletes the finished run that already has the logical date, with its tasks
	// and attempts, and starts the new one in its place (a queued or running one: conflict).
	Replace bool
}

// TriggerResult is the run made (or, with DryRun, that would be made).
type TriggerResult struct {
	Affected
	Run *RunBrief `json:"run,omitempty"`
	// DataIntervalStart and DataIntervalEnd are the run's interval.
	DataIntervalStart time.Time `json:"data_interval_start"`
	DataIntervalEnd   time.Time `json:"data_interval_end"`
}

// ClearRequest asks to re-run tasks of a run, optionally with their downstream/upstream.
type ClearRequest struct {
	DagID, RunID string
	TaskIDs      []string
	Downstream   bool
	Upstream     bool
	DryRun       bool
}

// MarkRequest asks to set a task's state by hand: State is "success" or "failed".
type MarkRequest struct {
	DagID, RunID, TaskID string
	State                string
	DryRun               bool
}

// BackfillRequest asks for a DAG's intervals with logical dates From..To (YYYY-MM-DD in the
// DAG's timezone); Reprocess is none (default), failed or completed.
type BackfillRequest struct {
	DagID         string
	From, To      string
	Reprocess     string
	MaxActiveRuns int
	DryRun        bool
}

// BackfillResult is the backfill started (or, with DryRun, the intervals it would handle).
type BackfillResult struct {
	Affected
	Backfill *BackfillView `json:"backfill,omitempty"`
	// Existing is true when the same range was already running: that one is returned.
	Existing bool `json:"existing,omitempty"`
}
