package alerts_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/scheduler"
)

func plainFailingDAG(id, owner string) string {
	return "id: " + id + "\nowner: " + owner + "\ntasks:\n  - {id: load, type: test.fail}\n"
}

// The digest lists the tasks that failed since the last one, grouped by owner with mentions;
// posts nothing when nothing failed; and is posted once when two ticks run at once.
func TestDigest(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{DigestChannel: "#digest", DigestEvery: 10 * time.Minute})
	b.deploy(t, plainFailingDAG("kims_load", kimEmail))
	b.deploy(t, plainFailingDAG("lees_load", leeEmail))
	for _, id := range []string{"kims_load", "lees_load"} {
		b.execute(t, b.trigger(t, id), "load")
	}
	b.clock.Add(time.Minute)
	rep, err := b.alerter.Tick(b.ctx, b.clock.Now())
	if err != nil || rep.Digest != 2 {
		t.Fatalf("first tick: %+v, %v; want a digest of 2 failures", rep, err)
	}
	ms := b.posted("#digest")
	if len(ms) != 1 {
		t.Fatalf("%d digests, want 1", len(ms))
	}
	c := content(ms[0])
	kim, lee := strings.Index(c, "<@"+kimID+">*: 1 failed"), strings.Index(c, "<@"+leeID+">*: 1 failed")
	if kim < 0 || lee < 0 {
		t.Fatalf("digest does not group by owner with mentions: %s", c)
	}
	if strings.Index(c, "kims_load") > lee || strings.Index(c, "lees_load") < lee {
		t.Errorf("a failure is listed under the wrong owner: %s", c)
	}
	if !strings.Contains(c, "partner API returned 503") {
		t.Errorf("digest lacks the error's first line: %s", c)
	}
	if strings.Count(c, "(try 1, ran ") != 2 {
		t.Errorf("each failure's line should say how long its try ran: %s", c)
	}

	// Not due yet, then due with nothing failed: nothing posted.
	for _, step := range []time.Duration{time.Minute, 10 * time.Minute} {
		b.clock.Add(step)
		if rep, err := b.alerter.Tick(b.ctx, b.clock.Now()); err != nil || rep.Digest != 0 {
			t.Fatalf("quiet tick: %+v, %v", rep, err)
		}
	}
	if n := len(b.posted("#digest")); n != 1 {
		t.Fatalf("%d digests after quiet ticks, want still 1", n)
	}

	// One more failure; two ticks at once post one digest.
	b.clock.Add(time.Minute)
	b.execute(t, b.trigger(t, "lees_load"), "load")
	b.clock.Add(10 * time.Minute)
	var wg sync.WaitGroup
	reps := make([]alerts.TickReport, 2)
	for i := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if reps[i], err = b.alerter.Tick(b.ctx, b.clock.Now()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ms = b.posted("#digest")
	if len(ms) != 2 || reps[0].Digest+reps[1].Digest != 1 {
		t.Fatalf("%d digests (ticks listed %d and %d); want one more, listing the new failure", len(ms), reps[0].Digest, reps[1].Digest)
	}
	if c := content(ms[1]); !strings.Contains(c, "lees_load") || strings.Contains(c, "kims_load") {
		t.Errorf("second digest should list only the new failure: %s", c)
	}
}

// SLAs, counted from the data interval end: the DAG's missed (the run still going), a task's
// met, another task's missed; each alerted once, in the run's thread, and the run's
// sla_due_at moved on to the next SLA ahead, then cleared.
func TestSLAMiss(t *testing.T) {
	t.Parallel()
	b := setup(t, alerts.Config{})
	b.deploy(t, `id: nightly
owner: kim@example.com
schedule: "0 0 * * *"
start: 2025-01-01
sla: 1h
alerts:
  slack: {channel: "#sla", on: [sla_miss]}
tasks:
  - {id: extract, type: test.ok, sla: 2h}
  - {id: report, type: test.ok, needs: [extract], sla: 3h}
`)
	// 00:30: the tick makes the run of [Jan 9, Jan 10); its SLAs fall at 01:00, 02:00, 03:00.
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	r := &scheduler.Run{DagID: "nightly", RunID: "scheduled__2025-01-09T00:00:00Z"}
	slaDue := func() *time.Time {
		t.Helper()
		v, err := b.store.GetRun(b.ctx, r.DagID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		return v.Rec.SLADueAt
	}
	if d := slaDue(); d == nil || !d.Equal(time.Date(2025, 1, 10, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("sla_due_at = %v, want 01:00 (the engine sets it)", d)
	}
	tick := func() alerts.TickReport {
		t.Helper()
		rep, err := b.alerter.Tick(b.ctx, b.clock.Now())
		if err != nil || len(rep.Errors) > 0 {
			t.Fatalf("tick: %v %v", err, rep.Errors)
		}
		return rep
	}
	if rep := tick(); rep.SLAMisses != 0 {
		t.Fatalf("at 00:30: %d misses, want 0", rep.SLAMisses)
	}

	b.clock.Add(time.Hour) // 01:30: the DAG's SLA passed, the run is not done
	if rep := tick(); rep.SLAMisses != 1 {
		t.Fatalf("at 01:30: %d misses, want 1 (the DAG's)", rep.SLAMisses)
	}
	ms := b.posted("#sla")
	if len(ms) != 1 || color(ms[0]) != alerts.ColorSLA || !strings.Contains(content(ms[0]), "SLA missed") {
		t.Fatalf("#sla: %+v; want the DAG's SLA miss", ms)
	}
	if d := slaDue(); d == nil || !d.Equal(time.Date(2025, 1, 10, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("sla_due_at = %v, want 02:00 (extract's)", d)
	}
	tick() // again at 01:30: nothing new
	if n := len(b.posted("#sla")); n != 1 {
		t.Fatalf("%d messages after a second tick, want still 1", n)
	}

	b.clock.Add(15 * time.Minute) // 01:45: extract finishes in time
	b.execute(t, r, "extract")
	b.clock.Add(45 * time.Minute) // 02:30
	if rep := tick(); rep.SLAMisses != 0 {
		t.Fatalf("at 02:30: %d misses, want 0 (extract made it)", rep.SLAMisses)
	}
	if d := slaDue(); d == nil || !d.Equal(time.Date(2025, 1, 10, 3, 0, 0, 0, time.UTC)) {
		t.Fatalf("sla_due_at = %v, want 03:00 (report's)", d)
	}

	b.clock.Add(time.Hour) // 03:30: report is still queued
	if rep := tick(); rep.SLAMisses != 1 {
		t.Fatalf("at 03:30: %d misses, want 1 (report's)", rep.SLAMisses)
	}
	ms = b.posted("#sla")
	if len(ms) != 2 || ms[1].ThreadTS != ms[0].TS || !strings.Contains(content(ms[1]), "report") {
		t.Fatalf("#sla: %+v; want report's miss as a reply in the run's thread", ms)
	}
	if !strings.Contains(content(ms[1]), "3h0m0s after the data interval end") {
		t.Errorf("the miss does not say which SLA: %s", content(ms[1]))
	}
	if d := slaDue(); d != nil {
		t.Fatalf("sla_due_at = %v, want nil (no SLA left)", d)
	}
}
