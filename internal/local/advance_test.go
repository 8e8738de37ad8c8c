package local_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/scheduler"
)

func (s *stackBundle) deploySrc(t *testing.T, name, src string) {
	t.Helper()
	d, err := dag.Parse(name+".yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
}

// A retry_delay far shorter than the tick's period is queued by the advancer's timer: this
// stack has no ticker at all, and the retry still runs.
func TestShortRetryDelayIsQueuedWithoutATick(t *testing.T) {
	s := startStack(t, time.Minute) // no ticker: TickEvery is 0
	marks := filepath.Join(t.TempDir(), "tries")
	s.deploySrc(t, "flaky", fmt.Sprintf(`id: flaky
owner: owner@example.com
tasks:
  - id: t
    type: shell
    retries: 1
    retry_delay: 1s
    with: {command: 'echo $UPDRAFT_TRY_NUMBER >> %s; [ "$UPDRAFT_TRY_NUMBER" -ge 2 ]'}
`, marks))
	r, err := s.stack.Engine.SubmitTrigger(s.ctx, "flaky", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.until(t, "the run to finish", func() bool {
		v, err := s.stack.Store.GetRun(s.ctx, r.DagID, r.RunID)
		return err == nil && v.Rec.State.Finished()
	})
	ti := mustTI(t, s, r, "t")
	if ti.State != scheduler.TaskSuccess || ti.TryNumber != 2 {
		t.Fatalf("t: %s try %d; want success on try 2", ti.State, ti.TryNumber)
	}
	if n := s.stack.Status().Ticks; n != 0 {
		t.Fatalf("%d ticks ran; the retry must not have waited for one", n)
	}
	b, _ := os.ReadFile(marks)
	if got := strings.Fields(string(b)); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Fatalf("tries run: %q; want 1 then 2, once each", got)
	}
	a, err := s.stack.Store.ListAttempts(s.ctx, r.DagID, r.RunID, "t")
	if err != nil || len(a) != 2 {
		t.Fatalf("attempts: %d %v; want 2", len(a), err)
	}
	if gap := a[1].Rec.StartedAt.Sub(*a[0].Rec.EndedAt); gap < time.Second {
		t.Fatalf("retry started %s after the failure; retry_delay is 1s", gap)
	}
}

// A submitted run returns at once: the stack's advancer does the whole cascade of a
// 2,000-task noop chain, and the shell task at its end runs once.
func TestSubmittedRunIsCascadedByTheAdvancer(t *testing.T) {
	s := startStack(t, time.Minute)
	marks := filepath.Join(t.TempDir(), "ran")
	var sb strings.Builder
	sb.WriteString("id: long_chain\nowner: owner@example.com\ntasks:\n")
	const n = 2000
	for i := range n {
		needs := ""
		if i > 0 {
			needs = fmt.Sprintf(", needs: [n%04d]", i-1)
		}
		fmt.Fprintf(&sb, "  - {id: n%04d, type: noop%s}\n", i, needs)
	}
	fmt.Fprintf(&sb, "  - {id: last, type: shell, needs: [n%04d], with: {command: 'echo ran >> %s'}}\n", n-1, marks)
	s.deploySrc(t, "long_chain", sb.String())
	t0 := time.Now()
	r, err := s.stack.Engine.SubmitTrigger(s.ctx, "long_chain", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	returned := time.Since(t0)
	if got := s.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	t.Logf("trigger returned in %s; the 2,000-noop chain and its shell task finished %s after the trigger", returned, time.Since(t0))
	for id, st := range s.states(t, r) {
		if st != scheduler.TaskSuccess {
			t.Fatalf("%s is %s; want success", id, st)
		}
	}
	if b, _ := os.ReadFile(marks); strings.Count(string(b), "ran") != 1 {
		t.Fatalf("the shell task ran %d times; want once", strings.Count(string(b), "ran"))
	}
}
