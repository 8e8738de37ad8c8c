package dag

import (
	"fmt"
	"strings"
)

// airflowNames maps names an Airflow user is likely to write to the Updraft field that does the
// same thing. A suggestion is only made when the target is valid where the name was found.
var airflowNames = map[string]string{
	"dag_id":            "id",
	"task_id":           "id",
	"name":              "id",
	"schedule_interval": "schedule",
	"cron":              "schedule",
	"tz":                "timezone",
	"start_date":        "start",
	"end_date":          "end",
	"default_args":      "defaults",
	"concurrency":       "max_active_tasks",
	"email":             "owner",
	"operator":          "type",
	"kind":              "type",
	"args":              "with",
	"arguments":         "with",
	"op_kwargs":         "with",
	"upstream":          "needs",
	"depends_on":        "needs",
	"dependencies":      "needs",
	"after":             "needs",
	"execution_timeout": "timeout",
	"timeout_seconds":   "timeout",
	"pool":              "resources",
	"queue":             "resources",
	"expand":            "for_each",
	"on_failure":        "alerts",
	"retry":             "retries",
	"bash_command":      "command",
	"cmd":               "command",
	"script":            "command",
	"environment":       "env",
	"workdir":           "cwd",
	"dir":               "cwd",
	"working_dir":       "cwd",
	// Airflow operators and shorthands for task types.
	"BashOperator":              "shell",
	"bash":                      "shell",
	"sh":                        "shell",
	"PythonOperator":            "go",
	"EmptyOperator":             "noop",
	"DummyOperator":             "noop",
	"empty":                     "noop",
	"dummy":                     "noop",
	"HttpOperator":              "http",
	"SimpleHttpOperator":        "http",
	"BigQueryInsertJobOperator": "bigquery.query",
	"bigquery":                  "bigquery.query",
	"SlackAPIPostOperator":      "slack.post",
	"slack":                     "slack.post",
	"pubsub":                    "pubsub.publish",
	"cloudrun":                  "cloudrun.job",
	"TriggerDagRunOperator":     "dag.trigger",
	"BranchPythonOperator":      "branch",
	"TimeSensor":                "sensor.time",
	"HttpSensor":                "sensor.http",
	"ExternalTaskSensor":        "sensor.dag_run",
}

// closest returns the candidate nearest to name, or "" when none is near enough to suggest.
func closest(name string, candidates []string) string {
	if name == "" || len(name) > 100 || len(candidates) > 1000 {
		return ""
	}
	if alias, ok := airflowNames[name]; ok {
		for _, c := range candidates {
			if c == alias {
				return c
			}
		}
	}
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := editDistance(lower, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	limit := max(2, len([]rune(name))/3)
	if bestDist <= limit {
		return best
	}
	// A name that is a clear prefix of a candidate ("depends" for "depends_on_past"), or starts
	// with one ("enviroment" for "env").
	for _, c := range candidates {
		if len(name) >= 4 && strings.HasPrefix(strings.ToLower(c), lower) ||
			len(c) >= 3 && strings.HasPrefix(lower, strings.ToLower(c)) {
			return c
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, counted in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// suggest builds a hint: "did you mean "x"? <what>: a, b, c".
func suggest(name string, candidates []string, what string) string {
	list := what + ": " + listNames(candidates, 20)
	if c := closest(name, candidates); c != "" {
		return fmt.Sprintf("did you mean %q? %s", c, list)
	}
	return list
}

// listNames joins names with ", ", shortening long lists.
func listNames(names []string, limit int) string {
	if len(names) == 0 {
		return "(none)"
	}
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + fmt.Sprintf(", … (%d more)", len(names)-limit)
	}
	return strings.Join(names, ", ")
}

// quoteShort quotes s for a message, cutting it when it is long.
func quoteShort(s string) string {
	r := []rune(s)
	if len(r) > 40 {
		return fmt.Sprintf("%q…", string(r[:40]))
	}
	return fmt.Sprintf("%q", s)
}
