package web

// stateStyle is how a state looks: a CSS class for its colour and pattern, a symbol so it
// reads without colour, and the words a title attribute and screen readers get.
type stateStyle struct {
	Class  string
	Symbol string
	Label  string
}

// states covers run, task-instance and attempt states (their names overlap on purpose).
var states = map[string]stateStyle{
	"":                  {"st-none", "·", "no status"},
	"none":              {"st-none", "·", "no status"},
	"scheduled":         {"st-scheduled", "…", "scheduled"},
	"queued":            {"st-queued", "Q", "queued"},
	"running":           {"st-running", "▶", "running"},
	"success":           {"st-success", "✓", "success"},
	"failed":            {"st-failed", "✗", "failed"},
	"up_for_retry":      {"st-retry", "↻", "up for retry"},
	"up_for_reschedule": {"st-reschedule", "z", "up for reschedule (sensor waiting)"},
	"skipped":           {"st-skipped", "»", "skipped"},
	"upstream_failed":   {"st-upstream", "↑", "upstream failed"},
	"removed":           {"st-removed", "−", "removed"},
	"lost":              {"st-failed", "?", "lost worker"},
}

// legendOrder is the order the legend lists task states in.
var legendOrder = []string{"success", "failed", "upstream_failed", "running", "queued", "scheduled",
	"up_for_retry", "up_for_reschedule", "skipped", "removed", "none"}

// styleOf returns the style of a state, or a neutral one naming an unknown state.
func styleOf(state string) stateStyle {
	if s, ok := states[state]; ok {
		return s
	}
	return stateStyle{"st-none", "?", state}
}

// unfinished reports whether a run, task or attempt state can still change on its own,
// which is what decides whether a page keeps polling.
func unfinished(state string) bool {
	switch state {
	case "queued", "running", "scheduled", "up_for_retry", "up_for_reschedule":
		return true
	}
	return false
}
