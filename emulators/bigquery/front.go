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
	"strings"
	"time"
)

// front stands in front of the emulator's REST endpoint and gives it BigQuery's behaviour
// where Updraft depends on it and the emulator differs, so that code talking to BigQuery
// needs no emulator special case (Emulator.Host is the front; RawHost the emulator):
//
//   - A query job with a destination table honours its write disposition: WRITE_TRUNCATE
//     empties the table first (the front deletes it; the job creates it again from the
//     query's schema, as truncate replaces data and schema), WRITE_EMPTY (a query's default)
//     is refused with BigQuery's "Already Exists: Table …" when the table has rows. The
//     emulator appends in both cases.
//   - jobs.insert with a job id that exists answers 409 duplicate ("Already Exists: Job"),
//     as BigQuery does, where the emulator answers 400 "already created".
//   - A query of INFORMATION_SCHEMA.PARTITIONS, which the emulator lacks, answers 400
//     invalidQuery saying so, rather than the emulator's analysis error.
//
// Everything else is forwarded unchanged. Nothing else writes the emulator's tables while a
// job is inserted (a local stack, a test), so checking then inserting is not racy there.
type front struct {
	target *url.URL
	rp     *httputil.ReverseProxy
	client *http.Client
	srv    *http.Server
	lis    net.Listener
	done   chan struct{}
}

// startFront serves a front for the emulator at target ("127.0.0.1:PORT") on a free port of
// 127.0.0.1.
func startFront(target string) (*front, error) {
	lis, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		return nil, fmt.Errorf("bqemu: front: %w", err)
	}
	u := &url.URL{Scheme: "http", Host: target}
	f := &front{target: u, rp: httputil.NewSingleHostReverseProxy(u), client: &http.Client{Timeout: time.Minute},
		lis: lis, done: make(chan struct{})}
	f.rp.ErrorLog = log.New(io.Discard, "", 0) // a client that gave up is not the front's error
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { defer close(f.done); _ = f.srv.Serve(lis) }()
	return f, nil
}

// host is the front's "127.0.0.1:PORT".
func (f *front) host() string { return f.lis.Addr().String() }

func (f *front) close() error {
	err := f.srv.Close()
	<-f.done
	return err
}

var queriesPath = regexp.MustCompile(`^(?:/bigquery/v2)?/projects/([^/]+)/queries$`)

// insertedJob is what the front reads of a jobs.insert or jobs.query body.
type insertedJob struct {
	JobReference struct {
		ProjectID string `json:"projectId"`
		JobID     string `json:"jobId"`
		Location  string `json:"location"`
	} `json:"jobReference"`
	Configuration struct {
		Query *struct {
			Query            string `json:"query"`
			WriteDisposition string `json:"writeDisposition"`
			DestinationTable *struct {
				ProjectID string `json:"projectId"`
				DatasetID string `json:"datasetId"`
				TableID   string `json:"tableId"`
			} `json:"destinationTable"`
		} `json:"query"`
	} `json:"configuration"`
	Query string `json:"query"` // jobs.query
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	jobs, queries := jobsPath.FindStringSubmatch(r.URL.Path), queriesPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || (jobs == nil && queries == nil) {
		f.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "bqemu front: reading the request: "+err.Error())
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var j insertedJob
	if !strings.Contains(r.Header.Get("Content-Type"), "json") || json.Unmarshal(body, &j) != nil {
		f.rp.ServeHTTP(w, r) // a multipart load job, or not JSON: the emulator's to answer
		return
	}
	sql := j.Query
	if q := j.Configuration.Query; q != nil {
		sql = q.Query
	}
	if strings.Contains(strings.ToUpper(sql), "INFORMATION_SCHEMA.PARTITIONS") {
		writeError(w, http.StatusBadRequest, "invalidQuery",
			"INFORMATION_SCHEMA.PARTITIONS needs real BigQuery: the local BigQuery emulator does not have it")
		return
	}
	if jobs != nil {
		if status, msg := f.beforeInsert(r, jobs[1], &j); status != 0 {
			writeError(w, status, "duplicate", msg)
			return
		}
	}
	f.rp.ServeHTTP(w, r)
}

// beforeInsert refuses a duplicate job id and applies a query's write disposition to its
// destination table; a non-zero status is the answer instead of the insert.
func (f *front) beforeInsert(r *http.Request, project string, j *insertedJob) (int, string) {
	if id := j.JobReference.JobID; id != "" {
		code, _ := f.call(r, http.MethodGet, "/bigquery/v2/projects/"+project+"/jobs/"+url.PathEscape(id), nil)
		if code == http.StatusOK {
			return http.StatusConflict, fmt.Sprintf("Already Exists: Job %s:%s", project, id)
		}
	}
	q := j.Configuration.Query
	if q == nil || q.DestinationTable == nil {
		return 0, ""
	}
	d := q.DestinationTable
	table := "/bigquery/v2/projects/" + d.ProjectID + "/datasets/" + d.DatasetID + "/tables/" + url.PathEscape(d.TableID)
	switch q.WriteDisposition {
	case "WRITE_TRUNCATE":
		_, _ = f.call(r, http.MethodDelete, table, nil) // missing is fine: the job creates it
	case "", "WRITE_EMPTY":
		code, body := f.call(r, http.MethodGet, table+"/data?maxResults=1", nil)
		var data struct {
			Rows []any `json:"rows"`
		}
		if code == http.StatusOK && json.Unmarshal(body, &data) == nil && len(data.Rows) > 0 {
			return http.StatusConflict, fmt.Sprintf("Already Exists: Table %s:%s.%s (write: empty needs an empty or missing table; use truncate to replace it)",
				d.ProjectID, d.DatasetID, d.TableID)
		}
	}
	return 0, ""
}

// call makes one request of the emulator, returning its status and body (0 when it failed).
func (f *front) call(r *http.Request, method, path string, body io.Reader) (int, []byte) {
	req, err := http.NewRequestWithContext(r.Context(), method, f.target.String()+path, body)
	if err != nil {
		return 0, nil
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// writeError answers as BigQuery's REST API does.
func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg,
		"errors": []any{map[string]any{"reason": reason, "message": msg, "domain": "global"}}}})
}
