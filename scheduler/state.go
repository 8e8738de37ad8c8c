package scheduler

// RunState is the state of a DAG run.
type RunState string

// Run states: queued → running → success | failed.
const (
	RunQueued  RunState = "queued"
	RunRunning RunState = "running"
	RunSuccess RunState = "success"
	RunFailed  RunState = "failed"
)

// Finished reports whether the run has ended.
func (s RunState) Finished() bool { return s == RunSuccess || s == RunFailed }

// TaskState is the state of a task instance, with Airflow's names.
type TaskState string

// Task-instance states.
const (
	TaskNone            TaskState = "none"
	TaskScheduled       TaskState = "scheduled"
	TaskQueued          TaskState = "queued"
	TaskRunning         TaskState = "running"
	TaskSuccess         TaskState = "success"
	TaskFailed          TaskState = "failed"
	TaskUpForRetry      TaskState = "up_for_retry"
	TaskUpForReschedule TaskState = "up_for_reschedule"
	TaskSkipped         TaskState = "skipped"
	TaskUpstreamFailed  TaskState = "upstream_failed"
	TaskRemoved         TaskState = "removed"
)

// Finished reports whether the task instance has reached a final state for this run.
func (s TaskState) Finished() bool {
	switch s {
	case TaskSuccess, TaskFailed, TaskSkipped, TaskUpstreamFailed, TaskRemoved:
		return true
	}
	return false
}

// Bad reports whether the state makes its run fail (DESIGN: any failed or upstream_failed
// instance fails the run, unlike Airflow where only leaves decide).
func (s TaskState) Bad() bool { return s == TaskFailed || s == TaskUpstreamFailed }

// AttemptState is the state of one attempt (one dispatch of a task instance).
type AttemptState string

// Attempt states.
const (
	AttemptRunning AttemptState = "running"
	AttemptSuccess AttemptState = "success"
	AttemptFailed  AttemptState = "failed"
	AttemptSkipped AttemptState = "skipped"
	AttemptLost    AttemptState = "lost"
	// AttemptReschedule is a sensor poke that found its condition not met yet: the task
	// waits in up_for_reschedule, holding nothing, until its next poke.
	AttemptReschedule AttemptState = "up_for_reschedule"
)

// TaskState maps a finished attempt to the task state its result gives.
func (s AttemptState) TaskState() TaskState {
	switch s {
	case AttemptSuccess:
		return TaskSuccess
	case AttemptSkipped:
		return TaskSkipped
	case AttemptReschedule:
		return TaskUpForReschedule
	default:
		return TaskFailed
	}
}
