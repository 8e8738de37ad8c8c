package backend

import (
	"context"
	"time"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/scheduler/service"
)

// ProbeWithin bounds each health probe's call.
const ProbeWithin = 2 * time.Second

// Probes are the health checks of a service's store and queue, for its /healthz: "store" is
// one Firestore read (a single DAG document), "queue" one GetTopic on the tasks topic, each
// within ProbeWithin.
func Probes(st *fsstore.Store, q *psqueue.Queue) map[string]service.Probe {
	return map[string]service.Probe{
		"store": func(ctx context.Context) error { _, err := st.Ping(ctx, ProbeWithin); return err },
		"queue": func(ctx context.Context) error { return q.Check(ctx, ProbeWithin) },
	}
}

// Probes are this backend's store and queue health checks (see Probes).
func (b *Backend) Probes() map[string]service.Probe { return Probes(b.Store, b.Queue) }
