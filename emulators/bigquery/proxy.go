package bqemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Proxy is a fault-injecting proxy in front of a running emulator, for long jobs: the
// emulator runs every query at once, so nothing could wait for a job. The proxy forwards
// every request to the emulator and every answer back unchanged, except for query jobs it
// holds: from their jobs.insert until Release (or until the hold time has passed), jobs.insert
// and jobs.get answer them RUNNING and getQueryResults answers jobComplete false. The job
// itself is the emulator's, and ran; only its DONE is delayed. jobs.cancel of a held job is
// forwarded and the job then reads DONE with BigQuery's "stopped" error, as a cancelled job
// does. It counts the jobs created, per job id, so tests can prove a job ran once.
type Proxy struct {
	// Host is the proxy's "127.0.0.1:PORT", to give in place of the emulator's (EnvVar).
	Host string

	srv  *http.Server
	done chan struct{}

	mu    sync.Mutex
	hold  time.Duration
	jobs  map[string]*proxiedJob
	order []string
}

type proxiedJob struct {
	inserted            time.Time
	hold                time.Duration
	inserts, gets       int
	failGets            int
	released, cancelled bool
}

var (
	jobsPath    = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/jobs$`)
	jobPath     = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/jobs/([^/]+)$`)
	cancelPath  = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/jobs/([^/]+)/cancel$`)
	resultsPath = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/queries/([^/]+)$`)
)

// StartProxy serves a proxy to the emulator at target ("127.0.0.1:PORT") on a free port of
// 127.0.0.1. Jobs inserted through it are held RUNNING for hold (0: not held; SetHold changes
// it for later jobs).
func StartProxy(target string, hold time.Duration) (*Proxy, error) {
	lis, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		return nil, fmt.Errorf("bqemu: proxy: %w", err)
	}
	p := &Proxy{Host: lis.Addr().String(), hold: hold, jobs: map[string]*proxiedJob{}, done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	base := rp.Director
	rp.Director = func(r *http.Request) {
		base(r)
		r.Header.Del("Accept-Encoding") // answers are rewritten: have them plain
	}
	rp.ModifyResponse = p.rewrite
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client that gave up is not the proxy's error
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go func() { defer close(p.done); _ = p.srv.Serve(lis) }()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.done
	return err
}

// SetHold sets how long jobs inserted from now on are held RUNNING.
func (p *Proxy) SetHold(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = d
}

// Release lets a held job read DONE from now on.
func (p *Proxy) Release(jobID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[jobID]; ok {
		j.released = true
	}
}

// FailGets makes the next n jobs.get of a job answer 403 accessDenied, as BigQuery does when
// a permission goes missing (a fault no retry of the client's hides).
func (p *Proxy) FailGets(jobID string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[jobID]; ok {
		j.failGets = n
	}
}

// Inserts is how many times jobs.insert created the job (0 or 1: BigQuery refuses a second
// job with the same id; a proxy count above 1 would mean the emulator ran it twice).
func (p *Proxy) Inserts(jobID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[jobID]; ok {
		return j.inserts
	}
	return 0
}

// Jobs lists the ids of the jobs created through the proxy, in order.
func (p *Proxy) Jobs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...)
}

// Gets is how many times jobs.get read the job (a poke reads it once).
func (p *Proxy) Gets(jobID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[jobID]; ok {
		return j.gets
	}
	return 0
}

// Cancelled reports whether jobs.cancel reached the job while it was held.
func (p *Proxy) Cancelled(jobID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.jobs[jobID]
	return ok && j.cancelled
}

// held reports whether a job reads RUNNING now; the caller holds p.mu.
func (p *Proxy) held(j *proxiedJob) bool {
	return j != nil && !j.released && !j.cancelled && time.Since(j.inserted) < j.hold
}

// handler answers getQueryResults and jobs.cancel of held jobs itself; everything else goes
// to the emulator.
func (p *Proxy) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := resultsPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
			p.mu.Lock()
			j := p.jobs[m[2]]
			held, cancelled := p.held(j), j != nil && j.cancelled
			p.mu.Unlock()
			switch {
			case cancelled:
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
					"code": 400, "message": stoppedMessage, "errors": []any{map[string]any{"reason": "stopped", "message": stoppedMessage}}}})
				return
			case held:
				writeJSON(w, http.StatusOK, map[string]any{"kind": "bigquery#getQueryResultsResponse",
					"jobReference": map[string]any{"projectId": m[1], "jobId": m[2]}, "jobComplete": false})
				return
			}
		}
		if m := jobPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
			p.mu.Lock()
			j := p.jobs[m[2]]
			fail := j != nil && j.failGets > 0
			if fail {
				j.failGets--
			}
			p.mu.Unlock()
			if fail {
				writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{
					"code": 403, "message": "Access Denied: injected by the proxy", "errors": []any{map[string]any{"reason": "accessDenied", "message": "Access Denied: injected by the proxy"}}}})
				return
			}
		}
		if m := cancelPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodPost {
			p.mu.Lock()
			if j := p.jobs[m[2]]; p.held(j) {
				j.cancelled = true
			}
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})
}

const stoppedMessage = "Job execution was cancelled: User requested cancellation"

// rewrite records created jobs and shows held ones RUNNING (cancelled ones DONE, stopped).
func (p *Proxy) rewrite(resp *http.Response) error {
	r := resp.Request
	var jobID string
	insert := false
	switch {
	case r.Method == http.MethodPost && jobsPath.MatchString(r.URL.Path):
		insert = true
	case r.Method == http.MethodGet && jobPath.MatchString(r.URL.Path):
		jobID = jobPath.FindStringSubmatch(r.URL.Path)[2]
	case r.Method == http.MethodPost && cancelPath.MatchString(r.URL.Path):
		jobID = cancelPath.FindStringSubmatch(r.URL.Path)[2]
	default:
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		setBody(resp, body)
		return nil
	}
	job := doc
	if j, ok := doc["job"].(map[string]any); ok { // jobs.cancel wraps the job
		job = j
	}
	if ref, ok := job["jobReference"].(map[string]any); ok && jobID == "" {
		jobID, _ = ref["jobId"].(string)
	}
	p.mu.Lock()
	j := p.jobs[jobID]
	if insert && jobID != "" {
		if j == nil {
			j = &proxiedJob{inserted: time.Now(), hold: p.hold}
			p.jobs[jobID] = j
			p.order = append(p.order, jobID)
		}
		j.inserts++
	}
	if j != nil && r.Method == http.MethodGet {
		j.gets++
	}
	held, cancelled := p.held(j), j != nil && j.cancelled
	p.mu.Unlock()
	switch {
	case cancelled:
		job["status"] = map[string]any{"state": "DONE",
			"errorResult": map[string]any{"reason": "stopped", "message": stoppedMessage},
			"errors":      []any{map[string]any{"reason": "stopped", "message": stoppedMessage}}}
	case held:
		job["status"] = map[string]any{"state": "RUNNING"}
		if st, ok := job["statistics"].(map[string]any); ok {
			delete(st, "endTime")
		}
	default:
		setBody(resp, body)
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	setBody(resp, out)
	return nil
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.Header.Del("Content-Encoding")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
