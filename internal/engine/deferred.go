package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// Deferred tasks (bigquery.query, cloudrun.job) submit an external job in one short attempt
// and then wait for it in up_for_reschedule, as sensors do, poking its status in short
// attempts of the same try. The job's reference is saved on the task instance before the job
// is submitted, so whatever dies afterwards, the next attempt finds the job instead of
// starting another, and clear, mark and dagrun_timeout know what to cancel.

// Kinds of deferred jobs.
const (
	JobBigQuery = "bigquery"
	JobCloudRun = "cloudrun"
)

// JobRef names a deferred task's external job.
type JobRef struct {
	// Kind is JobBigQuery or JobCloudRun.
	Kind string `json:"kind"`
	// Project and Location are where the job runs (BigQuery's job location; Cloud Run's region).
	Project  string `json:"project,omitempty"`
	Location string `json:"location,omitempty"`
	// Name is the BigQuery job id, or the Cloud Run job's full name.
	Name string `json:"name"`
	// Execution is the Cloud Run execution's full name, once RunJob has named it.
	Execution string `json:"execution,omitempty"`
	// Tag is the id of the attempt that submitted the job: the BigQuery job id derives from it,
	// a Cloud Run execution carries it in its environment, so the job can be found by it.
	Tag string `json:"tag"`
	// Try is the try that waits for the job (a later try adopts a job still running).
	Try int `json:"try"`
	// SubmittedAt is when the job was submitted (the wait's start).
	SubmittedAt time.Time `json:"submitted_at"`
	// Cancelled is set once Updraft asked for the job to be cancelled: no try adopts it.
	Cancelled bool `json:"cancelled,omitempty"`
}

// ParseJobRef reads a task instance's job field ("" gives false).
func ParseJobRef(s string) (JobRef, bool) {
	var r JobRef
	if s == "" || json.Unmarshal([]byte(s), &r) != nil || r.Kind == "" {
		return JobRef{}, false
	}
	return r, true
}

// String is the reference as the task instance stores it.
func (r JobRef) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// JobCanceller cancels deferred tasks' jobs where a task message asking for it is handled
// (tasks.JobCanceller, in the dispatchers).
type JobCanceller interface {
	// CancelJob asks the job's service to cancel it; a job already finished or gone needs
	// nothing. It does not wait for the job to stop.
	CancelJob(ctx context.Context, ref JobRef) error
}

// cancelJobOf asks for the job a task instance waited for to be cancelled, unless it
// finished well: a task message with CancelJob goes to the dispatcher, which holds the
// permissions on the users' jobs (best effort: a lost message leaves the job running to its
// end, and no try adopts it). It returns the job field to store: the reference marked
// cancelled.
func (e *Engine) cancelJobOf(ctx context.Context, ti *scheduler.TaskInstance, why string) string {
	ref, ok := ParseJobRef(ti.Job)
	if !ok || ref.Cancelled || ti.State == scheduler.TaskSuccess {
		return ti.Job
	}
	ref.Cancelled = true
	msg, _ := json.Marshal(scheduler.TaskMessage{
		AttemptRef: scheduler.AttemptRef{DagID: ti.DagID, RunID: ti.RunID, TaskID: ti.TaskID, TryNumber: max(ref.Try, 1), AttemptID: ref.Tag},
		Type:       ti.Type, CancelJob: ref.String(),
	})
	if err := e.pub.PublishTask(ctx, msg); err != nil {
		e.Stats.PublishFailures.Add(1)
		e.log.Warn("could not ask for a deferred job to be cancelled; it runs to its end", "task", ti.Key(), "job", ref.Name, "execution", ref.Execution, "reason", why, "error", err)
	} else {
		e.log.Info("asked for a deferred job to be cancelled", "task", ti.Key(), "job", ref.Name, "execution", ref.Execution, "reason", why)
	}
	return ref.String()
}

// waitingOnJob reports whether a task instance is waiting for its current try's job between
// pokes (a dagrun_timeout then fails it rather than skipping it, as it would a sensor).
func waitingOnJob(ti *scheduler.TaskInstance) bool {
	ref, ok := ParseJobRef(ti.Job)
	return ok && !ref.Cancelled && ref.Try == ti.TryNumber && ti.State == scheduler.TaskUpForReschedule
}

// Job returns the job reference saved on the task instance, from this try or an earlier one.
func (c *Claim) Job() (JobRef, bool) { return ParseJobRef(c.ti.Job) }

// WaitStarted is when the current try's first attempt was claimed: a deferred task's wait,
// bounded by its timeout, counts from it.
func (c *Claim) WaitStarted() time.Time {
	if c.ti.SensorStartedAt != nil {
		return *c.ti.SensorStartedAt
	}
	return c.started
}

// SaveJob saves the job reference on the task instance, only while it still runs this
// attempt: a task cleared or marked meanwhile gets ErrStale, and its job must not be
// submitted (or, once submitted, must be cancelled). The instance also holds the attempt, so
// a renewal of it or the tick's look at a live worker may have written it since: a save that
// finds the instance changed reads it again and, while it still runs this attempt, saves on
// that version.
func (c *Claim) SaveJob(ctx context.Context, ref JobRef) error {
	s := ref.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	for range maxConflictRetries {
		ut, err := c.e.store.SaveTaskJob(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID, c.tiTime, s)
		if err == nil {
			c.tiTime, c.ti.Job = ut, s
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("engine: save the job of %s: %w", c.Ref.AttemptID, err)
		}
		v, err := c.e.store.GetTaskInstance(ctx, c.Ref.DagID, c.Ref.RunID, c.Ref.TaskID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return fmt.Errorf("%w: the task instance of %s is gone", ErrStale, c.Ref.AttemptID)
		}
		if err != nil {
			return fmt.Errorf("engine: save the job of %s: %w", c.Ref.AttemptID, err)
		}
		if err := c.stillOurs(v); err != nil {
			return fmt.Errorf("%s changed while its job was being submitted (cleared or marked): %w", c.ti.Key(), err)
		}
		c.ti, c.tiTime = v.Rec, v.UpdateTime
	}
	return fmt.Errorf("engine: save the job of %s: too many concurrent changes", c.Ref.AttemptID)
}
