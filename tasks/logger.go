package tasks

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/render"
	"github.com/updraft-dev/updraft/scheduler"
)

// Entry is one log line of an attempt, with Cloud Logging's field names for a container's
// structured stdout.
type Entry struct {
	Severity string            `json:"severity"`
	Message  string            `json:"message"`
	Time     time.Time         `json:"time"`
	Labels   map[string]string `json:"logging.googleapis.com/labels,omitempty"`
}

// Logger writes an attempt's log as JSON lines in Cloud Logging's structured format, to the
// process's stdout (Cloud Logging on GCP) and, locally, to a file per attempt.
type Logger struct {
	mask   func() []string // the secret values to mask, read at each line
	mu     sync.Mutex
	out    []io.Writer
	file   *os.File
	labels map[string]string
	now    func() time.Time
}

// LogPath is where an attempt's log is kept under a local log directory.
func LogPath(dir string, ref scheduler.AttemptRef) string {
	return filepath.Join(dir, ref.DagID, ref.RunID, ref.TaskID, "try-"+itoa(ref.TryNumber)+"-"+ref.AttemptID+".log")
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// NewLogger opens an attempt's logger. stdout may be nil; logDir "" keeps no file.
func NewLogger(stdout io.Writer, logDir string, ref scheduler.AttemptRef) (*Logger, error) {
	l := &Logger{now: time.Now, labels: map[string]string{
		"dag_id": ref.DagID, "run_id": ref.RunID, "task_id": ref.TaskID, "try_number": itoa(ref.TryNumber),
		"attempt_id": ref.AttemptID,
	}}
	if stdout != nil {
		l.out = append(l.out, stdout)
	}
	if logDir != "" {
		p := LogPath(logDir, ref)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		l.file = f
		l.out = append(l.out, f)
	}
	return l, nil
}

// Info logs a line at INFO.
func (l *Logger) Info(msg string) { l.write("INFO", msg) }

// Warn logs a line at WARNING.
func (l *Logger) Warn(msg string) { l.write("WARNING", msg) }

// Error logs a line at ERROR.
func (l *Logger) Error(msg string) { l.write("ERROR", msg) }

// SetMask sets where the logger finds the secret values it masks (***) in every line.
func (l *Logger) SetMask(values func() []string) { l.mask = values }

func (l *Logger) write(sev, msg string) {
	if l == nil {
		return
	}
	if l.mask != nil {
		msg = render.Mask(msg, l.mask())
	}
	b, _ := json.Marshal(Entry{Severity: sev, Message: msg, Time: l.now().UTC(), Labels: l.labels})
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.out {
		_, _ = w.Write(b)
	}
}

// Close closes the log file.
func (l *Logger) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	return l.file.Close()
}
