package dag

import (
	"encoding/json"
	"fmt"
)

// Limits a DAG must fit, checked by validation so that a DAG that validates also deploys.
const (
	// MaxTasks bounds the tasks of one DAG (before for_each expansion): each run creates a
	// document per task, and a run's start writes them all.
	MaxTasks = 2500
	// MaxStoredBytes bounds a DAG's file plus its parsed spec: a DAG version is stored as one
	// Firestore document, whose limit is 1,048,576 bytes; the rest is kept for its other
	// fields.
	MaxStoredBytes = 1_000_000
)

// checkFileSize refuses a file too large to be stored before parsing it.
func (p *parser) checkFileSize(data []byte) bool {
	if len(data) <= MaxStoredBytes {
		return true
	}
	p.add(0, "", fmt.Sprintf("the file is %d bytes; a DAG is stored as one document, so the file and its parsed form must fit in %d bytes", len(data), MaxStoredBytes),
		"split the DAG, or move long SQL and scripts out of it (e.g. into a table or a bundle file)")
	return false
}

// checkLimits refuses a DAG with too many tasks, or whose file and spec together are too
// large to store.
func (p *parser) checkLimits(d *DAG, data []byte) {
	if len(d.Tasks) > MaxTasks {
		p.add(d.Tasks[MaxTasks].Line, "tasks", fmt.Sprintf("the DAG has %d tasks; the limit is %d", len(d.Tasks), MaxTasks),
			"split it into DAGs joined by dag.trigger or sensor.dag_run, or fan a task out at run time with for_each")
	}
	spec, err := json.Marshal(d)
	if err != nil {
		return
	}
	if n := len(data) + len(spec); n > MaxStoredBytes {
		p.add(0, "", fmt.Sprintf("the DAG takes %d bytes to store (its file, %d, and its parsed form, %d); the limit is %d",
			n, len(data), len(spec), MaxStoredBytes),
			"split the DAG, or move long SQL and scripts out of it")
	}
}
