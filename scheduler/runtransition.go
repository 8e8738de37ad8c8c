package scheduler

import "time"

// RunChange is a typed change of a run document: its state (Set false: unchanged) and the
// times the run's lifecycle moves. The engine writes it with the precondition that the run is
// unchanged since it was read; the store alone knows the field names.
type RunChange struct {
	State     Opt[RunState]
	StartedAt Opt[*time.Time]
	EndedAt   Opt[*time.Time]
	// TickDueAt is when the tick must look at the run again (a start lease, its timeout).
	TickDueAt Opt[*time.Time]
	TimeoutAt Opt[*time.Time]
}

// StartRun is the change that moves a queued run to running at now, holding a start lease
// (the tick sweeps the run if its starter dies before it gives the lease up) and its
// dagrun_timeout deadline, if any.
func StartRun(now, lease time.Time, timeout *time.Time) RunChange {
	due := &lease
	if timeout != nil && timeout.Before(lease) {
		due = timeout
	}
	return RunChange{State: To(RunRunning), StartedAt: To(&now), TickDueAt: To(due), TimeoutAt: To(timeout)}
}

// RunOutcome is the state a run's task instances give it: tasks is how many the DAG has,
// total how many instances exist, done how many finished and bad how many of those failed or
// were upstream_failed. A run is finished once every instance is (failed when any is bad,
// unlike Airflow where only leaves decide), and running otherwise.
func RunOutcome(tasks, total, done, bad int) RunState {
	switch {
	case total < tasks || done < total:
		return RunRunning
	case bad > 0:
		return RunFailed
	}
	return RunSuccess
}

// SettleRun is the change that moves a run to the state its instances give it: a finished
// run ends now with no deadline left; a finished run reopened (a clear made some instance
// unfinished) runs again with its dagrun_timeout counted from now (deadline; nil: none).
func SettleRun(to RunState, now time.Time, deadline *time.Time) RunChange {
	if to == RunRunning {
		return RunChange{State: To(to), EndedAt: To[*time.Time](nil), TickDueAt: To(deadline), TimeoutAt: To(deadline)}
	}
	return RunChange{State: To(to), EndedAt: To(&now), TickDueAt: To[*time.Time](nil)}
}
