package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/local"
)

// ui measures the server time of the API's two heaviest pages, handler to response body, on
// the emulators: the DAG list with 1,000 DAGs and the grid of a 200-task DAG with 25 runs.
// The DAG list is measured as the engine is today and with each DAG's latest runs kept on its
// document (engine.RebuildRecentRuns here; engine.NoteRun at run transitions once hooked).
func (b *bench) ui() {
	st, stop := b.stack(1)
	defer stop()
	acc := access.New(st.Store, nil)
	_, err := acc.Grant(b.ctx, "bench@example.com", access.Viewer, access.Actor{Who: "bench", From: "bench"})
	must(err)
	c := console.New(console.Config{Engine: st.Engine, Store: st.Store, Access: acc, Logs: console.FileLogs{}})
	h := api.New(c, api.Options{Identify: func(*http.Request) (api.Identity, bool) {
		return api.Identity{Email: "bench@example.com", Via: "idtoken"}, true
	}})

	// A 200-task DAG with 25 runs.
	var src strings.Builder
	src.WriteString("id: grid_200\nowner: bench@example.com\ntasks:\n")
	for i := range 200 {
		fmt.Fprintf(&src, "  - {id: t%03d, type: noop}\n", i)
	}
	b.deploy(st, src.String())
	for k := range 25 {
		_, err := st.Engine.Trigger(b.ctx, "grid_200", nil, time.Now().Add(time.Duration(k)*time.Millisecond))
		must(err)
	}
	// The first request reads every cell from the task instances (5,000 documents) and keeps
	// the finished runs' cells on their documents; the next ones read one document per run.
	b.measure(st, h, "ui: grid, 200 tasks × 25 runs", "/api/v1/dags/grid_200/grid?runs=25", max(5, b.runs))

	// 1,000 DAGs, each with two finished runs (noop tasks finish without a worker).
	const nDAGs = 1000
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				id := fmt.Sprintf("list_%04d", i)
				b.deploy(st, fmt.Sprintf("id: %s\nowner: bench@example.com\nschedule: \"0 0 * * *\"\nstart: 2025-01-01\ntasks:\n  - {id: a, type: noop}\n", id))
				for k := range 2 {
					_, err := st.Engine.Trigger(b.ctx, id, nil, time.Now().Add(time.Duration(k)*time.Millisecond))
					must(err)
				}
			}
		})
	}
	for i := range nDAGs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	// As the engine is today: the latest runs come from one `in` query per 30 DAGs.
	b.measure(st, h, "ui: DAG list, 1,000 DAGs, page of 100, latest runs queried", "/api/v1/dags?limit=100", 3)
	// With the latest runs kept on each DAG document (engine.NoteRun at run transitions).
	jobs = make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				must(st.Engine.RebuildRecentRuns(b.ctx, fmt.Sprintf("list_%04d", i)))
			}
		})
	}
	for i := range nDAGs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	b.measure(st, h, "ui: DAG list, 1,000 DAGs, page of 100, latest runs kept on the DAGs", "/api/v1/dags?limit=100", max(5, b.runs))
	b.measure(st, h, "ui: DAG list, 1,000 DAGs, page of 500, latest runs kept on the DAGs", "/api/v1/dags?limit=500", max(5, b.runs))
}

// measure serves path several times (after one warm-up) and reports the median server time
// and the Firestore documents one request read.
func (b *bench) measure(st *local.Stack, h http.Handler, name, path string, n int) {
	serve := func() (time.Duration, int64) {
		r0, _ := st.Store.Counts()
		req := httptest.NewRequest("GET", path, nil)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != 200 {
			fmt.Printf("%s: HTTP %d %s\n", path, rec.Code, rec.Body.String())
			panic("bench: request failed")
		}
		r1, _ := st.Store.Counts()
		return d, r1 - r0
	}
	cold, coldReads := serve()
	var durs []float64
	var reads int64
	for range n {
		d, r := serve()
		durs = append(durs, float64(d)/1e6)
		reads = r
	}
	b.add(name, fmt.Sprintf("%s server time (first request %s), %d documents read (first %d)", ms(median(durs)), ms(float64(cold)/1e6), reads, coldReads), "≤ 300 ms; bounded reads")
}
