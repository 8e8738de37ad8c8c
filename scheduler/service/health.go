package service

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Probe checks one component the service depends on and returns nil when it is well, or why
// it is not. It must answer within its context's deadline.
type Probe func(ctx context.Context) error

// HealthWithin bounds all the probes of one health request together.
const HealthWithin = 3 * time.Second

// Health runs probes (component name → probe) concurrently, each bounded by HealthWithin, and
// returns component → "ok" or the reason it is not, and whether all were well.
func Health(ctx context.Context, probes map[string]Probe) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, HealthWithin)
	defer cancel()
	out := make(map[string]string, len(probes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, p := range probes {
		wg.Go(func() {
			msg := "ok"
			if err := p(ctx); err != nil {
				msg = err.Error()
			}
			mu.Lock()
			out[name] = msg
			mu.Unlock()
		})
	}
	wg.Wait()
	ok := true
	for _, v := range out {
		ok = ok && v == "ok"
	}
	return out, ok
}

// healthRoutes adds the health endpoints, outside any guard:
//
//   - GET /healthz and GET /health: readiness. With Probes set, each component's check
//     ({"store":"ok","queue":"ok"}), 200 when all are well and 503 with each failing
//     component's reason otherwise. Cloud Run reserves some paths ending in "z", so /health
//     is the same check under a name its front end always passes through.
//   - GET /health/live: liveness only ("ok" whenever the process serves HTTP). A Cloud Run
//     liveness probe, if one is ever configured, belongs here: an instance must not be
//     restarted because Firestore or Pub/Sub blips.
func (h *Handler) healthRoutes(mux *http.ServeMux) {
	live := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	ready := func(w http.ResponseWriter, r *http.Request) {
		if len(h.Probes) == 0 {
			live(w, r)
			return
		}
		res, ok := Health(r.Context(), h.Probes)
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, code, res)
	}
	mux.HandleFunc("GET /healthz", ready)
	mux.HandleFunc("GET /health", ready)
	mux.HandleFunc("GET /health/live", live)
}
