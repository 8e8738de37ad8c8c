package runemu

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// LogSink receives an execution's container output as Cloud Run sends it to Cloud Logging:
// one entry per line (the Logging stand-in's Write, emulators/logging).
type LogSink func(entries ...*loggingpb.LogEntry)

// maxLogLine is where a line without a newline is cut into entries, as Cloud Logging splits
// a long line of output.
const maxLogLine = 100 << 10

// SetLogSink makes every execution started from now on send its container output to sink as
// well as to its log file, line by line, as Cloud Run does: log names
// projects/P/logs/run.googleapis.com%2Fstdout and %2Fstderr, resource cloud_run_job
// (project_id, job_name, location), labels run.googleapis.com/execution_name, task_index and
// task_attempt. A line that is a JSON object becomes a jsonPayload whose severity is its
// "severity" field, as Cloud Run reads structured logs; any other line is a textPayload of
// severity DEFAULT. nil stops sending.
func (s *Server) SetLogSink(sink LogSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logSink = sink
}

// outputWriter writes one stream of an execution's output to its log file and, line by
// line, to the log sink.
type outputWriter struct {
	file   io.Writer
	fileMu *sync.Mutex // the log file is shared by stdout and stderr
	sink   LogSink
	logID  string // run.googleapis.com/stdout or run.googleapis.com/stderr
	e      *execution
	mu     sync.Mutex
	buf    []byte
}

// outputs returns the stdout and stderr writers of e, which logs to file; the caller holds
// s.mu.
func (e *execution) outputs(file io.Writer) (stdout, stderr io.Writer, flush func()) {
	if e.s.logSink == nil {
		return file, file, func() {}
	}
	var mu sync.Mutex
	o := &outputWriter{file: file, fileMu: &mu, sink: e.s.logSink, logID: "run.googleapis.com/stdout", e: e}
	er := &outputWriter{file: file, fileMu: &mu, sink: e.s.logSink, logID: "run.googleapis.com/stderr", e: e}
	return o, er, func() { o.flush(); er.flush() }
}

// Write implements io.Writer.
func (w *outputWriter) Write(p []byte) (int, error) {
	w.fileMu.Lock()
	_, _ = w.file.Write(p)
	w.fileMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	var lines []string
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) > maxLogLine {
		lines = append(lines, string(w.buf[:maxLogLine]))
		w.buf = w.buf[maxLogLine:]
	}
	w.send(lines)
	return len(p), nil
}

// flush sends what is left of the output without a final newline.
func (w *outputWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.send([]string{string(w.buf)})
		w.buf = nil
	}
}

func (w *outputWriter) send(lines []string) {
	if len(lines) == 0 {
		return
	}
	e := w.e
	logName := "projects/" + e.project + "/logs/" + strings.ReplaceAll(w.logID, "/", "%2F")
	entries := make([]*loggingpb.LogEntry, 0, len(lines))
	for _, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		le := &loggingpb.LogEntry{
			LogName:   logName,
			Timestamp: timestamppb.New(time.Now()),
			Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{
				"project_id": e.project, "job_name": e.jobID, "location": e.location}},
			Labels: map[string]string{"run.googleapis.com/execution_name": e.id,
				"run.googleapis.com/task_index": "0", "run.googleapis.com/task_attempt": "0"},
			Payload: &loggingpb.LogEntry_TextPayload{TextPayload: line},
		}
		structured(le, line)
		entries = append(entries, le)
	}
	w.sink(entries...)
}

// structured makes le a structured entry when line is a JSON object, as Cloud Run does:
// its severity field becomes the entry's severity.
func structured(le *loggingpb.LogEntry, line string) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "{") {
		return
	}
	var m map[string]any
	if json.Unmarshal([]byte(t), &m) != nil {
		return
	}
	if sev, ok := m["severity"].(string); ok {
		if v, ok := ltype.LogSeverity_value[strings.ToUpper(sev)]; ok {
			le.Severity = ltype.LogSeverity(v)
		}
		delete(m, "severity")
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return
	}
	le.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: st}
}
