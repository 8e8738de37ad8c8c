package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"google.golang.org/api/option"
)

// BigQuery is the local BigQuery emulator, started only when something needs it: a DAG with a
// BigQuery task. Its address is fixed from the start (a front that forwards to the emulator
// once it answers), so workers get it in their environment at once; until then a request
// gets a clear "BigQuery isn't ready yet (building, N%)" error instead of a hang. The one-time
// build of the emulator runs in the background.
type BigQuery struct {
	project, logDir string
	// onReady runs once the emulator answers, before requests reach it (seed data).
	onReady func(context.Context, []option.ClientOption) error
	// OnProgress is told each change of state (a progress line).
	onProgress func(string)

	ln   net.Listener
	srv  *http.Server
	stop context.CancelFunc
	ctx  context.Context

	mu      sync.Mutex
	started bool
	status  string // what a request is told meanwhile
	emu     *bqemu.Emulator
	proxy   *httputil.ReverseProxy
	err     error
	ready   chan struct{} // closed once the emulator answers or failed to start
	wg      sync.WaitGroup
}

// BigQueryConfig configures a lazy BigQuery emulator.
type BigQueryConfig struct {
	Project string
	// LogDir receives the emulator's log (bigquery.log).
	LogDir string
	// OnReady runs once the emulator answers, before any request is forwarded to it (e.g.
	// seeds), with options that connect a client to the emulator itself.
	OnReady func(ctx context.Context, emulator []option.ClientOption) error
	// OnProgress is told each change of state: "building the BigQuery emulator (once): 42%".
	OnProgress func(line string)
}

// NewBigQuery listens on a loopback port for BigQuery requests; nothing is built or started
// until Want is called.
func NewBigQuery(cfg BigQueryConfig) (*BigQuery, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("local: listen for BigQuery: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	b := &BigQuery{project: cfg.Project, logDir: cfg.LogDir, onReady: cfg.OnReady, onProgress: cfg.OnProgress,
		ln: ln, ctx: ctx, stop: stop, status: "not started: no DAG here uses BigQuery", ready: make(chan struct{})}
	if b.onProgress == nil {
		b.onProgress = func(string) {}
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(b.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// Host is the "127.0.0.1:PORT" clients use (BIGQUERY_EMULATOR_HOST).
func (b *BigQuery) Host() string { return b.ln.Addr().String() }

// Env is what workers need to reach it.
func (b *BigQuery) Env() []string { return []string{bqemu.EnvVar + "=" + b.Host()} }

// ClientOptions connect a BigQuery client to it.
func (b *BigQuery) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint("http://" + b.Host()), option.WithoutAuthentication()}
}

// Want starts the emulator in the background (building it first if needed); calling it again
// does nothing.
func (b *BigQuery) Want() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	b.started = true
	b.status = "starting"
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.start() }()
}

// Wait waits until the emulator answers (nil), failed to start, or ctx ends.
func (b *BigQuery) Wait(ctx context.Context) error {
	select {
	case <-b.ready:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status says where the emulator is: not started, building (N%), starting, ready, or why it
// failed.
func (b *BigQuery) Status() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

func (b *BigQuery) setStatus(s string, announce bool) {
	b.mu.Lock()
	changed := b.status != s
	b.status = s
	b.mu.Unlock()
	if changed && announce {
		b.onProgress(s)
	}
}

func (b *BigQuery) start() {
	err := b.build()
	var emu *bqemu.Emulator
	if err == nil {
		b.setStatus("starting", true)
		emu, err = bqemu.Start(b.ctx, b.project, b.logDir)
	}
	if emu != nil {
		b.mu.Lock()
		b.emu = emu // stopped by Stop, even if seeding fails
		b.mu.Unlock()
	}
	if err == nil && b.onReady != nil {
		b.setStatus("seeding", false)
		err = b.onReady(b.ctx, emu.ClientOptions())
	}
	b.mu.Lock()
	if err == nil { // only now do requests reach it: seeded, as the DAGs expect
		target, _ := url.Parse("http://" + emu.Host)
		b.proxy = httputil.NewSingleHostReverseProxy(target)
	}
	if err != nil {
		b.err = fmt.Errorf("the BigQuery emulator did not start: %w", err)
		b.status = "failed: " + err.Error()
		b.proxy = nil
	} else {
		b.status = "ready at " + b.Host()
	}
	status := b.status
	b.mu.Unlock()
	close(b.ready)
	if b.ctx.Err() == nil {
		b.onProgress("BigQuery emulator " + status)
	}
}

// build builds the emulator unless it is there, telling its progress.
func (b *BigQuery) build() error {
	if bqemu.Built() {
		return nil
	}
	last := -2
	_, err := bqemu.EnsureBuiltProgress(b.ctx, func(done, total int) {
		pct := -1
		switch {
		case done < 0:
			b.setStatus("building (another updraft is building it)", true)
			return
		case total > 0:
			pct = done * 100 / total
		}
		if pct == last {
			return
		}
		// Announce every 10%, tell requests every percent.
		announce := pct < 0 || last < 0 || pct/10 != last/10
		last = pct
		if pct < 0 {
			b.setStatus("building (once, about 4 to 10 minutes)", announce)
			return
		}
		b.setStatus(fmt.Sprintf("building, %d%%", min(pct, 99)), announce)
	})
	return err
}

// serve forwards a request to the emulator once it is up, and answers a clear error before.
func (b *BigQuery) serve(w http.ResponseWriter, r *http.Request) {
	b.Want() // on demand: a BigQuery request is a need for BigQuery
	b.mu.Lock()
	proxy, status, err := b.proxy, b.status, b.err
	b.mu.Unlock()
	if proxy != nil {
		proxy.ServeHTTP(w, r)
		return
	}
	msg, reason := fmt.Sprintf("BigQuery isn't ready yet (%s)", status), "notReady"
	if err != nil {
		msg, reason = err.Error(), "startFailed"
	}
	// 400, not 503: the client retries 5xx until its deadline, and this should fail the try
	// now, saying why (the task's retries try again later).
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": http.StatusBadRequest, "message": msg, "status": "FAILED_PRECONDITION",
		"errors": []map[string]any{{"reason": reason, "message": msg}},
	}})
}

// Stop stops the emulator (and a build under way) and the front.
func (b *BigQuery) Stop() error {
	b.stop()
	_ = b.srv.Close()
	b.wg.Wait()
	b.mu.Lock()
	emu := b.emu
	b.mu.Unlock()
	if emu != nil {
		return emu.Stop()
	}
	return nil
}

// UsesBigQuery reports whether a task type needs the BigQuery emulator.
func UsesBigQuery(taskType string) bool {
	return taskType == "bigquery.query" || taskType == "sensor.bigquery_table"
}

// WaitBigQuery waits until the BigQuery front at host (a BigQuery of another process: the
// running `updraft dev`) forwards to a running emulator, asking for it to start; progress is
// told each new status.
func WaitBigQuery(ctx context.Context, host, project string, progress func(string)) error {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + host + "/bigquery/v2/projects/" + project + "/datasets"
	last := ""
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("local: BigQuery at %s: %w", host, err)
		}
		var body struct {
			Error struct {
				Message string `json:"message"`
				Errors  []struct {
					Reason string `json:"reason"`
				} `json:"errors"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		reason := ""
		if len(body.Error.Errors) > 0 {
			reason = body.Error.Errors[0].Reason
		}
		switch reason {
		case "startFailed":
			return fmt.Errorf("local: %s", body.Error.Message)
		case "notReady":
		default:
			return nil
		}
		if body.Error.Message != last {
			last = body.Error.Message
			progress(last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}
