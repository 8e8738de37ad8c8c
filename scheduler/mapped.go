package scheduler

import (
	"strconv"
	"strings"
)

// MaxMapLength bounds the instances one for_each task may expand into (Airflow's
// max_map_length default). A longer list fails the task with a clear error.
const MaxMapLength = 1024

// MapChildID is the task id of instance i of a for_each task: "load[3]".
func MapChildID(taskID string, i int) string { return taskID + "[" + strconv.Itoa(i) + "]" }

// ParseMapChild splits an instance id like "load[3]" into its task and index.
func ParseMapChild(id string) (taskID string, index int, ok bool) {
	if !strings.HasSuffix(id, "]") {
		return "", 0, false
	}
	open := strings.LastIndexByte(id, '[')
	if open <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[open+1 : len(id)-1])
	if err != nil || n < 0 || strconv.Itoa(n) != id[open+1:len(id)-1] {
		return "", 0, false
	}
	return id[:open], n, true
}

// MapMarker is what a for_each task's instances list as their downstream, so counting the
// instances of "load" (array-contains "load[]") never mixes them with load's own upstream.
func MapMarker(taskID string) string { return taskID + "[]" }

// MappedState is the state a for_each task takes once all its instances finished: failed
// when any failed or was upstream_failed, skipped when all were skipped (or there were none),
// success otherwise. Downstream tasks see the fan-out as this one upstream.
func MappedState(c UpstreamCounts) TaskState {
	switch {
	case c.Failed+c.UpstreamFailed > 0:
		return TaskFailed
	case c.Skipped == c.Total:
		return TaskSkipped
	}
	return TaskSuccess
}

// InstanceLess orders task instance ids as a DAG's file lists its tasks (pos: task id → its
// place), each for_each task's instances right after it by index; tasks the file doesn't
// list go last, by id.
func InstanceLess(pos map[string]int, a, b string) bool {
	key := func(id string) (int, string, int) {
		base, idx := id, -1
		if p, i, ok := ParseMapChild(id); ok {
			base, idx = p, i
		}
		n, ok := pos[base]
		if !ok {
			n = len(pos)
		}
		return n, base, idx
	}
	na, ba, xa := key(a)
	nb, bb, xb := key(b)
	if na != nb {
		return na < nb
	}
	if ba != bb {
		return ba < bb
	}
	return xa < xb
}
