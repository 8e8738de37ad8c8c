package taskrun

import (
	"context"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
)

// memHold is a task instance's job field, kept in memory.
type memHold struct {
	ref     string
	started time.Time
}

func (h *memHold) Job() (engine.JobRef, bool) { return engine.ParseJobRef(h.ref) }
func (h *memHold) SaveJob(_ context.Context, ref engine.JobRef) error {
	h.ref = ref.String()
	return nil
}
func (h *memHold) WaitStarted() time.Time { return h.started }

func TestPokesBackOffToThePokeInterval(t *testing.T) {
	submitted := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := submitted
	hold := &memHold{started: submitted}
	task := &dag.Task{ID: "t", Timeout: 2 * time.Hour}
	w := Waiting{tc: &Context{Task: task, Job: hold, Now: func() time.Time { return now }}}
	ref := engine.JobRef{SubmittedAt: submitted}
	var gaps []time.Duration
	pokes := 0
	for now.Before(submitted.Add(time.Hour)) {
		next := *w.PokeAfter(ref).RescheduleAt
		gaps = append(gaps, next.Sub(now))
		now = next
		pokes++
	}
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, g := range want {
		if gaps[i] != g {
			t.Fatalf("gaps %v…; want %v…", gaps[:len(want)], want)
		}
	}
	if pokes != 64 { // the submit's "not yet" and 63 pokes: 5 while backing off, then one a minute
		t.Fatalf("%d attempts in the first hour; want the submit and 63 pokes", pokes)
	}
	// The deadline caps the last wait: the poke at it cancels the job.
	now = submitted.Add(2*time.Hour - 10*time.Second)
	if next := *w.PokeAfter(ref).RescheduleAt; !next.Equal(submitted.Add(2 * time.Hour)) {
		t.Fatalf("last poke at %v; want the deadline", next)
	}
	task.PokeInterval = 10 * time.Second
	now = submitted.Add(time.Hour)
	if d := w.PokeAfter(ref).RescheduleAt.Sub(now); d != 10*time.Second {
		t.Fatalf("gap %s with poke_interval 10s", d)
	}
}
