package scheduler

import "fmt"

// TriggerRule names, as in Airflow.
const (
	AllSuccess              = "all_success"
	AllFailed               = "all_failed"
	AllDone                 = "all_done"
	AllSkipped              = "all_skipped"
	OneSuccess              = "one_success"
	OneFailed               = "one_failed"
	OneDone                 = "one_done"
	NoneFailed              = "none_failed"
	NoneFailedMinOneSuccess = "none_failed_min_one_success"
	NoneSkipped             = "none_skipped"
	Always                  = "always"
)

// UpstreamCounts counts a task's direct upstream instances by state. Failed counts only
// `failed`; UpstreamFailed counts `upstream_failed`; Done counts every finished state.
type UpstreamCounts struct {
	Total, Done, Success, Failed, UpstreamFailed, Skipped int
}

// Decision is what a trigger rule makes of a task's upstream counts.
type Decision int

// Decisions.
const (
	Wait         Decision = iota // not decidable yet
	Ready                        // the task is ready to be queued
	Skip                         // the task ends skipped
	FailUpstream                 // the task ends upstream_failed
)

func (d Decision) String() string {
	return [...]string{"wait", "ready", "skip", "upstream_failed"}[d]
}

// Evaluate applies a trigger rule to upstream counts, following Airflow's trigger_rule_dep:
// the rule first decides whether the task can never run (skipped or upstream_failed, which is
// how skips and failures propagate), then whether it may run now.
func Evaluate(rule string, c UpstreamCounts) (Decision, error) {
	if c.Total == 0 {
		return Ready, nil
	}
	allDone := c.Done == c.Total
	failures := c.Failed + c.UpstreamFailed
	switch rule {
	case AllSuccess, "":
		switch {
		case failures > 0:
			return FailUpstream, nil
		case c.Skipped > 0:
			return Skip, nil
		case c.Success == c.Total:
			return Ready, nil
		}
	case AllFailed:
		switch {
		case c.Success > 0 || c.Skipped > 0:
			return Skip, nil
		case failures == c.Total:
			return Ready, nil
		}
	case AllDone:
		if allDone {
			return Ready, nil
		}
	case AllSkipped:
		switch {
		case c.Success > 0 || failures > 0:
			return Skip, nil
		case c.Skipped == c.Total:
			return Ready, nil
		}
	case OneSuccess:
		switch {
		case c.Success > 0:
			return Ready, nil
		case allDone && c.Skipped == c.Total:
			return Skip, nil
		case allDone:
			return FailUpstream, nil
		}
	case OneFailed:
		switch {
		case failures > 0:
			return Ready, nil
		case allDone:
			return Skip, nil
		}
	case OneDone:
		switch {
		case c.Success > 0 || c.Failed > 0:
			return Ready, nil
		case allDone:
			return Skip, nil
		}
	case NoneFailed:
		switch {
		case failures > 0:
			return FailUpstream, nil
		case allDone:
			return Ready, nil
		}
	case NoneFailedMinOneSuccess:
		switch {
		case failures > 0:
			return FailUpstream, nil
		case allDone && c.Skipped == c.Total:
			return Skip, nil
		case allDone:
			return Ready, nil
		}
	case NoneSkipped:
		switch {
		case c.Skipped > 0:
			return Skip, nil
		case allDone:
			return Ready, nil
		}
	case Always:
		return Ready, nil
	default:
		return Wait, fmt.Errorf("scheduler: unknown trigger rule %q", rule)
	}
	return Wait, nil
}

// WaitsForUpstream reports whether a task with this rule waits for its upstream at all.
// Airflow's `always` does not: such a task is ready when its run starts.
func WaitsForUpstream(rule string) bool { return rule != Always }
