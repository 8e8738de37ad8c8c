// Package dag defines the DAG file format: the types a parsed DAG file becomes, the parser that
// keeps file:line positions, and validation with fix hints.
//
// It is part of the pure core: it imports no cloud SDK and does no I/O beyond reading the files
// it is given.
package dag

import "time"

// DAG is one parsed, validated DAG file.
type DAG struct {
	ID             string         `json:"id"`
	Description    string         `json:"description,omitempty"`
	Owner          string         `json:"owner"`
	Schedule       string         `json:"schedule,omitempty"` // cron or preset; empty: manual only
	Timezone       string         `json:"timezone"`           // IANA name; "UTC" when absent
	Start          *time.Time     `json:"start,omitempty"`    // read in Timezone
	End            *time.Time     `json:"end,omitempty"`
	Catchup        bool           `json:"catchup"`
	Paused         bool           `json:"paused"`
	MaxActiveRuns  int            `json:"max_active_runs"`  // default 16
	MaxActiveTasks int            `json:"max_active_tasks"` // default 16
	DagrunTimeout  time.Duration  `json:"dagrun_timeout,omitempty"`
	SLA            time.Duration  `json:"sla,omitempty"`
	Params         map[string]any `json:"params,omitempty"` // defaults; a trigger's conf overrides them
	// ParamSpecs are the typed params' rules (type, enum, pattern) a conf value must meet.
	ParamSpecs map[string]ParamSpec `json:"param_specs,omitempty"`
	Defaults   TaskDefaults         `json:"defaults"`
	Alerts     *Alerts              `json:"alerts,omitempty"`
	Tags       []string             `json:"tags,omitempty"`
	Tasks      []Task               `json:"tasks"`
	Source     SourceInfo           `json:"source"`
	// Bundle is the folder of files deployed with the DAG (nil: a DAG deployed on its own).
	Bundle *BundleRef `json:"bundle,omitempty"`
}

// SourceInfo says where a DAG came from.
type SourceInfo struct {
	File string `json:"file"`
	Hash string `json:"hash"` // sha256 of the file's bytes (and of its bundle's hash, when pinned), hex; the DAG's version
}

// TaskDefaults are Airflow's default_args: task fields applied where a task leaves them unset.
type TaskDefaults struct {
	Retries                 *int           `json:"retries,omitempty"`
	RetryDelay              *time.Duration `json:"retry_delay,omitempty"`
	RetryExponentialBackoff *bool          `json:"retry_exponential_backoff,omitempty"`
	MaxRetryDelay           *time.Duration `json:"max_retry_delay,omitempty"`
	Timeout                 *time.Duration `json:"timeout,omitempty"`
	Resources               string         `json:"resources,omitempty"`
	DependsOnPast           *bool          `json:"depends_on_past,omitempty"`
	TriggerRule             string         `json:"trigger_rule,omitempty"`
	// Alerts is the alerts block of every task that has none of its own.
	Alerts *Alerts `json:"alerts,omitempty"`
}

// Alerts says where and when a DAG or task posts to Slack.
type Alerts struct {
	Slack *SlackAlert `json:"slack,omitempty"`
}

// SlackAlert is the alerts.slack block.
type SlackAlert struct {
	Channel    string   `json:"channel"`
	On         []string `json:"on"` // failure | retry | success | sla_miss
	Connection string   `json:"connection,omitempty"`
}

// Task is one task of a DAG, with DAG defaults already applied by the parser.
type Task struct {
	ID                      string         `json:"id"`
	Type                    string         `json:"type"`
	With                    map[string]any `json:"with,omitempty"`
	Needs                   []string       `json:"needs,omitempty"`
	TriggerRule             string         `json:"trigger_rule"` // default all_success
	Retries                 int            `json:"retries"`
	RetryDelay              time.Duration  `json:"retry_delay"` // default 5m when retries > 0
	RetryExponentialBackoff bool           `json:"retry_exponential_backoff"`
	MaxRetryDelay           time.Duration  `json:"max_retry_delay,omitempty"`
	Timeout                 time.Duration  `json:"timeout,omitempty"`  // 0: none
	Resources               string         `json:"resources"`          // a class (default "small") or a Shape's String
	Executor                string         `json:"executor,omitempty"` // "" or "job"
	DependsOnPast           bool           `json:"depends_on_past"`
	SLA                     time.Duration  `json:"sla,omitempty"`
	Alerts                  *Alerts        `json:"alerts,omitempty"`
	ForEach                 any            `json:"for_each,omitempty"`
	PokeInterval            time.Duration  `json:"poke_interval,omitempty"`
	SensorTimeout           time.Duration  `json:"sensor_timeout,omitempty"`
	SoftFail                bool           `json:"soft_fail,omitempty"`
	Line                    int            `json:"line,omitempty"` // line of the task in its file
}

// Defaults for fields a DAG file leaves out.
const (
	DefaultTimezone       = "UTC"
	DefaultMaxActiveRuns  = 16
	DefaultMaxActiveTasks = 16
	DefaultResources      = "small"
	DefaultRetryDelay     = 5 * time.Minute
	DefaultTriggerRule    = "all_success"
)

// Task returns the task with the given id, or false.
func (d *DAG) Task(id string) (*Task, bool) {
	for i := range d.Tasks {
		if d.Tasks[i].ID == id {
			return &d.Tasks[i], true
		}
	}
	return nil, false
}

// Downstream returns, for each task id, the ids of the tasks that need it, in file order.
func (d *DAG) Downstream() map[string][]string {
	out := make(map[string][]string, len(d.Tasks))
	for _, t := range d.Tasks {
		for _, up := range t.Needs {
			out[up] = append(out[up], t.ID)
		}
	}
	return out
}

// Roots returns the ids of the tasks that need nothing, in file order.
func (d *DAG) Roots() []string {
	var out []string
	for _, t := range d.Tasks {
		if len(t.Needs) == 0 {
			out = append(out, t.ID)
		}
	}
	return out
}

// Location loads the DAG's timezone. Validation guarantees it loads.
func (d *DAG) Location() *time.Location {
	loc, err := time.LoadLocation(d.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// BranchSkips returns the tasks a branch's choice skips: its direct downstream tasks that
// are neither chosen nor downstream of a chosen one (Airflow's skip_all_except, so a join
// that follows both the branch and a chosen task still runs).
func (d *DAG) BranchSkips(branch string, follow []string) map[string]bool {
	down := d.Downstream()
	keep := map[string]bool{}
	var walk func(string)
	walk = func(id string) {
		if keep[id] {
			return
		}
		keep[id] = true
		for _, x := range down[id] {
			walk(x)
		}
	}
	for _, f := range follow {
		walk(f)
	}
	out := map[string]bool{}
	for _, x := range down[branch] {
		if !keep[x] {
			out[x] = true
		}
	}
	return out
}
