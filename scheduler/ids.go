package scheduler

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// RunType says how a run came to be.
type RunType string

// Run types, with Airflow's names.
const (
	RunScheduled RunType = "scheduled"
	RunManual    RunType = "manual"
	RunBackfill  RunType = "backfill"
)

// RunID returns the Airflow-style run id for a run of this type and logical date:
// `scheduled__2025-01-01T00:05:00Z`, RFC 3339 in UTC (microseconds kept for manual runs).
func RunID(t RunType, logical time.Time) string {
	u := logical.UTC()
	if t == RunManual {
		return string(t) + "__" + u.Truncate(time.Microsecond).Format("2006-01-02T15:04:05.999999Z07:00")
	}
	return string(t) + "__" + u.Format(time.RFC3339)
}

// keySep joins ids into document keys. It cannot occur in DAG, run or task ids.
const keySep = "~"

// RunKey is the document id of a run. Scheduled, backfill and manual runs of the same
// logical date share one key (`DAG~@DATE`; a manual run's date keeps its microseconds, which
// a schedule point never has), so there is one run per (DAG, logical date) whichever made it,
// enforced by the create, as Airflow 2's unique logical date.
func RunKey(dagID, runID string) string {
	for _, t := range []RunType{RunScheduled, RunBackfill, RunManual} {
		if date, ok := strings.CutPrefix(runID, string(t)+"__"); ok {
			return dagID + keySep + "@" + date
		}
	}
	return dagID + keySep + runID
}

// TaskKey is the document id of a task instance.
func TaskKey(dagID, runID, taskID string) string { return RunKey(dagID, runID) + keySep + taskID }

// SplitRunRef splits a `<dag_id>/<run_id>` reference. ok is false when ref has no slash.
func SplitRunRef(ref string) (dagID, runID string, ok bool) {
	dagID, runID, ok = strings.Cut(ref, "/")
	return dagID, runID, ok && dagID != "" && runID != ""
}

// NewAttemptID returns a fresh random attempt id (32 hex characters).
func NewAttemptID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("scheduler: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}
