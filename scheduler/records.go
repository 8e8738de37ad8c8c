package scheduler

import (
	"fmt"
	"time"
)

// DAGRecord is a deployed DAG as the store keeps it: the current version's source and the
// schedule cursor the tick advances.
type DAGRecord struct {
	DagID    string `firestore:"dag_id" json:"dag_id"`
	Version  string `firestore:"version" json:"version"`
	File     string `firestore:"file" json:"file"`
	Owner    string `firestore:"owner" json:"owner"`
	Schedule string `firestore:"schedule" json:"schedule,omitempty"`
	Timezone string `firestore:"timezone" json:"timezone"`
	Paused   bool   `firestore:"paused" json:"paused"`
	// Active is false once `dags deploy --prune` found the DAG's file gone; history stays.
	Active bool `firestore:"active" json:"active"`
	// NextStart and NextEnd are the next data interval no run has been created for yet.
	NextStart *time.Time `firestore:"next_start" json:"next_start,omitempty"`
	NextEnd   *time.Time `firestore:"next_end" json:"next_end,omitempty"`
	// NextDueAt is when the tick must look at this DAG again (NextEnd while active, unpaused
	// and scheduled; nil otherwise). It is the only field the tick queries DAGs by.
	NextDueAt *time.Time `firestore:"next_due_at" json:"next_due_at,omitempty"`
	UpdatedAt time.Time  `firestore:"updated_at" json:"updated_at"`
	// TickLate, when set, is the latest tick that came to this DAG later than one schedule
	// period after its interval was due, and what it skipped (catchup: false), for the UI.
	TickLate *TickLate `firestore:"tick_late" json:"tick_late,omitempty"`
}

// TickLate records a tick that reached a DAG more than one schedule period late.
type TickLate struct {
	// At is when the late tick ran; By is how late it was (seconds past the interval's end).
	At time.Time `firestore:"at" json:"at"`
	By float64   `firestore:"by_seconds" json:"by_seconds"`
	// Skipped counts the intervals it skipped (catchup: false) from SkippedFrom to SkippedTo
	// (the logical dates of the first and last of them).
	Skipped     int        `firestore:"skipped" json:"skipped"`
	SkippedFrom *time.Time `firestore:"skipped_from" json:"skipped_from,omitempty"`
	SkippedTo   *time.Time `firestore:"skipped_to" json:"skipped_to,omitempty"`
}

// DAGVersion is one immutable version of a DAG file. Runs keep the version they started with.
type DAGVersion struct {
	DagID     string    `firestore:"dag_id" json:"dag_id"`
	Version   string    `firestore:"version" json:"version"`
	File      string    `firestore:"file" json:"file"`
	Source    string    `firestore:"source" json:"source"`
	SpecJSON  string    `firestore:"spec_json" json:"-"`
	CreatedAt time.Time `firestore:"created_at" json:"created_at"`
	// Bundle is the hash of the bundle the version runs with, "dir:PATH" for a local folder
	// used in place, "" for a DAG deployed without its folder.
	Bundle string `firestore:"bundle,omitempty" json:"bundle,omitempty"`
}

// Run is one DAG run.
type Run struct {
	DagID         string    `firestore:"dag_id" json:"dag_id"`
	RunID         string    `firestore:"run_id" json:"run_id"`
	RunType       RunType   `firestore:"run_type" json:"run_type"`
	Version       string    `firestore:"version" json:"version"`
	State         RunState  `firestore:"state" json:"state"`
	LogicalDate   time.Time `firestore:"logical_date" json:"logical_date"`
	IntervalStart time.Time `firestore:"data_interval_start" json:"data_interval_start"`
	IntervalEnd   time.Time `firestore:"data_interval_end" json:"data_interval_end"`
	Conf          string    `firestore:"conf" json:"conf,omitempty"` // JSON object
	// BackfillID names the backfill that created or last re-ran this run.
	BackfillID string     `firestore:"backfill_id" json:"backfill_id,omitempty"`
	CreatedAt  time.Time  `firestore:"created_at" json:"created_at"`
	StartedAt  *time.Time `firestore:"started_at" json:"started_at,omitempty"`
	EndedAt    *time.Time `firestore:"ended_at" json:"ended_at,omitempty"`
	// TickDueAt is set while the run needs the tick: a queued run whose task instances may
	// not all exist yet (its creator may have died) is finished by the tick after this time.
	TickDueAt *time.Time `firestore:"tick_due_at" json:"-"`
	// TimeoutAt is when the running run's dagrun_timeout passes (nil: none). TickDueAt is
	// the earlier of it and the start's cascade lease: a run whose starter died before it
	// advanced every task it could is swept by the tick once that lease passes.
	TimeoutAt *time.Time `firestore:"timeout_at" json:"-"`
	// SLADueAt is when the earliest SLA of a scheduled run (the DAG's or a task's, counted
	// from the data interval end) passes; the alerts' tick checks it then and moves it on.
	SLADueAt *time.Time `firestore:"sla_due_at" json:"-"`
	// ExpireAt is when Firestore's TTL deletes the run: its creation plus the retention.
	ExpireAt time.Time `firestore:"expire_at" json:"-"`
}

// Key is the run's document id.
func (r *Run) Key() string { return RunKey(r.DagID, r.RunID) }

// TaskInstance is one task of one run.
type TaskInstance struct {
	DagID     string    `firestore:"dag_id" json:"dag_id"`
	RunID     string    `firestore:"run_id" json:"run_id"`
	RunKey    string    `firestore:"run_key" json:"-"`
	TaskID    string    `firestore:"task_id" json:"task_id"`
	Type      string    `firestore:"type" json:"type"`
	State     TaskState `firestore:"state" json:"state"`
	TryNumber int       `firestore:"try_number" json:"try_number"`
	MaxTries  int       `firestore:"max_tries" json:"max_tries"`
	// TryBase is the try number when the instance was last cleared: tries are counted on
	// across clears (as in Airflow), and the retry budget starts again from here.
	TryBase   int    `firestore:"try_base" json:"-"`
	AttemptID string `firestore:"attempt_id" json:"attempt_id,omitempty"`
	// Downstream lists the tasks that need this one; readiness counts instances by it
	// (array-contains), so an event costs reads in proportion to its downstream.
	Downstream []string `firestore:"downstream" json:"-"`
	// Counters for aggregation queries: 1 when the state is of that kind, else 0.
	Finished      int `firestore:"finished" json:"-"`
	Bad           int `firestore:"bad" json:"-"`
	CSuccess      int `firestore:"c_success" json:"-"`
	CFailed       int `firestore:"c_failed" json:"-"`
	CUpstreamFail int `firestore:"c_upstream_failed" json:"-"`
	CSkipped      int `firestore:"c_skipped" json:"-"`
	// CActive is 1 while the instance holds one of its run's max_active_tasks slots
	// (queued or running; an expanded for_each task waiting for its instances holds none).
	CActive   int        `firestore:"c_active" json:"-"`
	Error     string     `firestore:"error" json:"error,omitempty"`
	QueuedAt  *time.Time `firestore:"queued_at" json:"queued_at,omitempty"`
	StartedAt *time.Time `firestore:"started_at" json:"started_at,omitempty"`
	EndedAt   *time.Time `firestore:"ended_at" json:"ended_at,omitempty"`
	// TickDueAt is set while the instance waits on time: a queued attempt's republish
	// deadline, an up_for_retry instance's next try, an up_for_reschedule sensor's next poke.
	TickDueAt *time.Time `firestore:"tick_due_at" json:"-"`
	// Attempt is the instance's latest claimed attempt: who runs it, its lease and, once it
	// ended, its result. The attempts live on their instance's document, so a claim and a
	// result are each one write of it (docs/firestore-ops.md).
	Attempt *Attempt `firestore:"attempt,omitempty" json:"-"`
	// PastAttempts are the attempts before Attempt, oldest first (the claim of a new attempt
	// moves the latest one here; at most MaxPastAttempts are kept, without their XCom).
	PastAttempts []Attempt `firestore:"past_attempts,omitempty" json:"-"`
	// AttemptCount is how many attempts the document holds (Attempt and PastAttempts), for
	// aggregation queries.
	AttemptCount int `firestore:"attempt_count" json:"-"`
	// AttemptDueAt is when the tick must look at Attempt: its lease expiry while it runs (a
	// lost worker), and once it ended, a follow-up deadline that its worker clears after it
	// has advanced the task's downstream (so a worker dying in between loses nothing).
	AttemptDueAt *time.Time `firestore:"attempt_due_at" json:"-"`
	// SensorStartedAt is when the current try's first poke was claimed: sensor_timeout
	// counts from it, across the pokes of the try.
	SensorStartedAt *time.Time `firestore:"sensor_started_at" json:"sensor_started_at,omitempty"`
	// Job is the external job a deferred task (bigquery.query, cloudrun.job) submitted and
	// waits for between pokes: engine.JobRef as JSON, saved before the job is submitted.
	Job string `firestore:"job" json:"job,omitempty"`
	// Follow is what a branch task chose: the downstream tasks to run (the others are skipped).
	Follow []string `firestore:"follow" json:"follow,omitempty"`
	// MapCount is set on a for_each task once it expanded: how many instances (id[0] …) it has.
	// The task stays running until they all finish, then takes their combined state.
	MapCount *int `firestore:"map_count" json:"map_count,omitempty"`
	// MapIndex and MapItem are set on an instance of a for_each task: its position and its
	// item (JSON), which its templates see as .index and .item.
	MapIndex *int   `firestore:"map_index" json:"map_index,omitempty"`
	MapItem  string `firestore:"map_item" json:"map_item,omitempty"`
	// ExpireAt is when Firestore's TTL deletes the instance: its creation plus the retention.
	ExpireAt time.Time `firestore:"expire_at" json:"-"`
}

// Key is the task instance's document id.
func (ti *TaskInstance) Key() string { return TaskKey(ti.DagID, ti.RunID, ti.TaskID) }

// Ref names the instance's current attempt (the one it is queued for or runs).
func (ti TaskInstance) Ref() AttemptRef {
	return AttemptRef{DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, TryNumber: ti.TryNumber, AttemptID: ti.AttemptID}
}

// MaxPastAttempts is how many earlier attempts a task instance keeps beside its latest.
const MaxPastAttempts = 100

// Attempt is one dispatch of a task instance: claimed by one worker, which alone writes it
// while it runs. It is kept on its task instance's document (TaskInstance.Attempt).
type Attempt struct {
	ID             string       `firestore:"attempt_id" json:"attempt_id"`
	DagID          string       `firestore:"dag_id" json:"dag_id"`
	RunID          string       `firestore:"run_id" json:"run_id"`
	TaskID         string       `firestore:"task_id" json:"task_id"`
	TryNumber      int          `firestore:"try_number" json:"try_number"`
	Type           string       `firestore:"type" json:"type"`
	State          AttemptState `firestore:"state" json:"state"`
	Worker         string       `firestore:"worker" json:"worker"`
	ExecutorRef    string       `firestore:"executor_ref" json:"executor_ref,omitempty"`
	LeaseExpiresAt time.Time    `firestore:"lease_expires_at" json:"lease_expires_at"`
	StartedAt      time.Time    `firestore:"started_at" json:"started_at"`
	EndedAt        *time.Time   `firestore:"ended_at" json:"ended_at,omitempty"`
	ExitCode       *int         `firestore:"exit_code" json:"exit_code,omitempty"`
	Error          string       `firestore:"error" json:"error,omitempty"`
	XCom           string       `firestore:"xcom" json:"xcom,omitempty"` // JSON
	Rendered       string       `firestore:"rendered" json:"rendered,omitempty"`
	LogRef         string       `firestore:"log_ref" json:"log_ref,omitempty"`
	// TickDueAt is its instance's AttemptDueAt while this is the latest attempt (filled in
	// when read; not stored on the attempt).
	TickDueAt *time.Time `firestore:"-" json:"-"`
	// Final marks a failure another try cannot fix (no retry), for the tick when it does the
	// result's follow-up in its worker's place.
	Final bool `firestore:"final,omitempty" json:"final,omitempty"`
}

// Finished reports whether the attempt has an outcome.
func (s AttemptState) Finished() bool { return s != AttemptRunning && s != "" }

// AttemptRef is what travels in a task message and in UPDRAFT_ATTEMPT: enough to find the
// attempt's task instance and to claim it.
type AttemptRef struct {
	DagID     string `json:"dag_id"`
	RunID     string `json:"run_id"`
	TaskID    string `json:"task_id"`
	TryNumber int    `json:"try_number"`
	AttemptID string `json:"attempt_id"`
}

// Backfill re-runs or fills a DAG's intervals between two logical dates. It lives in the
// store; the tick creates its runs oldest first within its limit, so it survives the CLI.
type Backfill struct {
	ID            string `firestore:"backfill_id" json:"backfill_id"`
	DagID         string `firestore:"dag_id" json:"dag_id"`
	From          string `firestore:"from" json:"from"` // YYYY-MM-DD in the DAG's timezone
	To            string `firestore:"to" json:"to"`
	Reprocess     string `firestore:"reprocess" json:"reprocess"` // none | failed | completed
	MaxActiveRuns int    `firestore:"max_active_runs" json:"max_active_runs"`
	State         string `firestore:"state" json:"state"` // running | done | cancelled
	Total         int    `firestore:"total" json:"total"`
	// Next is the start of the next interval to consider; nil once all were considered.
	Next      *time.Time `firestore:"next" json:"next,omitempty"`
	Created   int        `firestore:"created" json:"created"`
	Rerun     int        `firestore:"rerun" json:"rerun"`
	Skipped   int        `firestore:"skipped" json:"skipped"`
	CreatedAt time.Time  `firestore:"created_at" json:"created_at"`
	EndedAt   *time.Time `firestore:"ended_at" json:"ended_at,omitempty"`
	TickDueAt *time.Time `firestore:"tick_due_at" json:"-"`
	// Gen counts the starts of this backfill (0 and 1: the first): a range started again
	// once it ended counts only the runs of its latest start.
	Gen int `firestore:"gen" json:"gen,omitempty"`
}

// RunsKey is the backfill_id its latest start writes on the runs it creates or re-runs: the
// backfill's id for the first start, with "#N" for the Nth, so counts of one start never
// include another's runs.
func (b *Backfill) RunsKey() string {
	if b.Gen <= 1 {
		return b.ID
	}
	return fmt.Sprintf("%s#%d", b.ID, b.Gen)
}

// Backfill states and reprocess policies.
const (
	BackfillRunning   = "running"
	BackfillDone      = "done"
	BackfillCancelled = "cancelled"

	ReprocessNone      = "none"
	ReprocessFailed    = "failed"
	ReprocessCompleted = "completed"
)
