package local

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/scheduler/service"
)

// HealEvery is how often the local stack's Healer looks at the emulators by default.
const HealEvery = time.Second

// healProbeWithin bounds each of the Healer's calls.
const healProbeWithin = 2 * time.Second

// Healer watches the local stack's Firestore and Pub/Sub and repairs what an emulator
// restart loses, logging each change of state once (not once per retry):
//
//   - Pub/Sub answering without the tasks topic (the emulator restarted; it keeps topics in
//     memory): the topics and subscriptions are created again. The stack's streaming pulls
//     resubscribe by themselves (psqueue.Queue.Receive), and attempts whose message was lost
//     are republished by the tick, as any unclaimed attempt.
//   - Firestore answering again without any DAG after it had some (the emulator restarted
//     without its data): Redeploy deploys the DAG folder again.
type Healer struct {
	Store *fsstore.Store
	Queue *psqueue.Queue
	// Redeploy deploys the DAGs again (nil: nothing is redeployed); it returns how many.
	Redeploy func(ctx context.Context) (int, error)
	// Every is how often the Healer looks (default HealEvery).
	Every time.Duration
	Log   *slog.Logger

	mu                   sync.Mutex
	storeErr, queueErr   string // "" while well
	storeSeen, queueSeen bool   // answered at least once
	hadDAGs              bool
	heals                HealCounts
}

// HealCounts is what the Healer repaired, for /api/status.
type HealCounts struct {
	TopicsRecreated int `json:"topics_recreated"`
	DAGsRedeployed  int `json:"dags_redeployed"`
	StoreOutages    int `json:"store_outages"`
	QueueOutages    int `json:"queue_outages"`
}

// Counts returns what the Healer repaired so far.
func (h *Healer) Counts() HealCounts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.heals
}

// Run looks at the backends every Every until ctx ends.
func (h *Healer) Run(ctx context.Context) {
	every := h.Every
	if every <= 0 {
		every = HealEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.Once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once looks at both backends once and repairs what it can.
func (h *Healer) Once(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { h.checkQueue(ctx) })
	wg.Go(func() { h.checkStore(ctx) })
	wg.Wait()
}

func (h *Healer) checkQueue(ctx context.Context) {
	err := h.Queue.Check(ctx, healProbeWithin)
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, psqueue.ErrTopicMissing) {
		if eerr := h.Queue.Ensure(ctx); eerr != nil {
			err = eerr
		} else {
			h.Log.Warn(h.Queue.Where()+" answers without Updraft's topics (it restarted): created the topics and subscriptions again; unclaimed attempts are republished by the tick",
				"component", "queue")
			h.mu.Lock()
			h.heals.TopicsRecreated++
			h.mu.Unlock()
			err = nil
		}
	}
	h.transition("queue", &h.queueErr, &h.queueSeen, &h.heals.QueueOutages, err)
}

func (h *Healer) checkStore(ctx context.Context) {
	hasDAGs, err := h.Store.Ping(ctx, healProbeWithin)
	if ctx.Err() != nil {
		return
	}
	h.transition("store", &h.storeErr, &h.storeSeen, &h.heals.StoreOutages, err)
	if err != nil {
		return
	}
	h.mu.Lock()
	lost := h.hadDAGs && !hasDAGs
	h.hadDAGs = h.hadDAGs || hasDAGs
	h.mu.Unlock()
	if !lost || h.Redeploy == nil {
		return
	}
	n, err := h.Redeploy(ctx)
	if err != nil {
		h.Log.Error("Firestore answers without any DAG (the emulator restarted empty); redeploying the DAG folder failed, retrying", "component", "store", "error", err)
		return
	}
	h.Log.Warn("Firestore answers without any DAG (the emulator restarted empty): redeployed the DAG folder; runs and history before the restart are gone",
		"component", "store", "dags", n)
	h.mu.Lock()
	h.heals.DAGsRedeployed += n
	h.mu.Unlock()
}

// transition records a component's state and logs when it changes: down (with the reason)
// and back.
func (h *Healer) transition(component string, last *string, seen *bool, outages *int, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	h.mu.Lock()
	prev, wasSeen := *last, *seen
	*last = msg
	*seen = *seen || err == nil
	if msg != "" && prev == "" {
		*outages++
	}
	h.mu.Unlock()
	switch {
	case msg != "" && prev == "":
		h.Log.Error(component+" is down: "+msg+" (tasks wait; the stack heals when it answers again)", "component", component)
	case msg != "" && prev != msg:
		h.Log.Debug(component+" still down", "component", component, "error", msg)
	case msg == "" && prev != "" && wasSeen:
		h.Log.Info(component+" answers again", "component", component)
	case msg == "" && prev != "":
		h.Log.Info(component+" answers", "component", component)
	}
}

// Probes are the stack's store and queue health checks, for /healthz (see backend.Probes).
func (s *Stack) Probes() map[string]service.Probe { return backend.Probes(s.Store, s.Queue) }
