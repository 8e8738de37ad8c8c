package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// A sensor that pokes for a long time makes an attempt per poke, each kept on its task
// instance's document with its rendered arguments; Firestore refuses documents over 1 MiB.
// However many pokes and however large the arguments, the pokes go on being claimed.
func TestLongPokingSensorWithLargeArgumentsKeepsBeingClaimed(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	ready, _ := pokes(b)
	big := strings.Repeat("select 1 union all ", 700) // a 13 KB query, as a sensor's SQL may be
	b.deploy(t, fmt.Sprintf(`id: longpoke
owner: owner@example.com
tasks:
  - {id: a, type: test.poke, poke_interval: 1m, sensor_timeout: 24h, with: {sql: %q}}
  - {id: b, type: test.ok, needs: [a]}
`, big))
	r := b.trigger(t, "longpoke")
	const pokesBeforeMet = 110
	for i := range pokesBeforeMet {
		if err := b.worker.Execute(b.ctx, b.ref(t, r, "a")); err != nil {
			t.Fatalf("poke %d: %v", i+1, err)
		}
		if s := b.state(t, r, "a"); s != scheduler.TaskUpForReschedule {
			t.Fatalf("after poke %d a is %s; want up_for_reschedule", i+1, s)
		}
		b.clock.Add(time.Minute)
		b.tick(t)
	}
	ready("a")
	b.execute(t, r, "a")
	if s := b.state(t, r, "a"); s != scheduler.TaskSuccess {
		t.Fatalf("a is %s once met; want success", s)
	}
	as, err := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != scheduler.MaxPastAttempts+1 {
		t.Fatalf("%d attempts listed; want the latest and %d past ones", len(as), scheduler.MaxPastAttempts)
	}
	latest, past := as[len(as)-1].Rec, as[len(as)-2].Rec
	if latest.State != scheduler.AttemptSuccess || !strings.Contains(latest.Rendered, big) {
		t.Fatalf("latest attempt %s, rendered %d bytes; want success with its arguments whole", latest.State, len(latest.Rendered))
	}
	if past.State != scheduler.AttemptReschedule || len(past.Rendered) > 2<<10 || !strings.Contains(past.Rendered, "clipped from") {
		t.Fatalf("past attempt %s, rendered %d bytes; want up_for_reschedule with its arguments clipped", past.State, len(past.Rendered))
	}
}
