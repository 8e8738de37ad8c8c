package tasks

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/internal/render"
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
//
// An attempt's log is bounded (SetMaxBytes; DefaultLogMaxBytes unless UPDRAFT_LOG_MAX_BYTES
// says otherwise, see Worker): its first half is written as it comes; once that is full, the
// logger keeps only the latest lines up to the other half in memory and, at Close, writes a
// `[… N bytes cut …]` line (N counts the output left out) and then those latest lines. So
// the start and the end of a long output are both kept, whatever the lines' lengths.
type Logger struct {
	mask   func() []string // the secret values to mask, read at each line
	mu     sync.Mutex
	out    []io.Writer
	file   *os.File
	labels map[string]string
	now    func() time.Time

	max     int64   // 0: unbounded
	written int64   // bytes written in the head
	sealed  bool    // the head is full: lines go to the tail
	tail    []entry // the latest lines, held until Close
	tailLen int64   // their encoded size
	cut     int64   // bytes of output left out
}

// DefaultLogMaxBytes bounds an attempt's log unless UPDRAFT_LOG_MAX_BYTES says otherwise.
const DefaultLogMaxBytes = 16 << 20

// MinLogMaxBytes is the smallest bound an attempt's log may be given.
const MinLogMaxBytes = 4 << 10

type entry struct {
	sev, msg string
	at       time.Time
	size     int64 // encoded
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

// SetMaxBytes bounds the log's size (0: unbounded); call it before the first line.
func (l *Logger) SetMaxBytes(n int64) { l.max = n }

// LineKeep is how much of one very long output line is kept at each end: a quarter of the
// log's bound, so a cut line still fits in the log's head or tail.
func (l *Logger) LineKeep() int {
	if l == nil || l.max <= 0 {
		return DefaultLogMaxBytes / 4
	}
	return int(l.max / 4)
}

func (l *Logger) encode(e entry) []byte {
	b, _ := json.Marshal(Entry{Severity: e.sev, Message: e.msg, Time: e.at, Labels: l.labels})
	return append(b, '\n')
}

func (l *Logger) emit(b []byte) {
	for _, w := range l.out {
		_, _ = w.Write(b)
	}
}

func (l *Logger) write(sev, msg string) {
	if l == nil {
		return
	}
	if l.mask != nil {
		msg = render.Mask(msg, l.mask())
	}
	e := entry{sev: sev, msg: msg, at: l.now().UTC()}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.encode(e)
	if l.max <= 0 || !l.sealed && l.written+int64(len(b)) <= l.max/2 {
		l.written += int64(len(b))
		l.emit(b)
		return
	}
	if !l.sealed {
		// The head takes what fits of this line; the rest of it starts the tail.
		l.sealed = true
		room := int(l.max/2-l.written) - len(l.encode(entry{sev: sev, at: e.at}))
		for room > 0 {
			head := entry{sev: sev, msg: cutUTF8(msg, room), at: e.at}
			hb := l.encode(head)
			if over := l.written + int64(len(hb)) - l.max/2; over > 0 {
				room -= int(over)
				continue
			}
			if head.msg != "" {
				l.written += int64(len(hb))
				l.emit(hb)
				e.msg = msg[len(head.msg):]
			}
			break
		}
	}
	e.size = int64(len(l.encode(e)))
	l.tail = append(l.tail, e)
	l.tailLen += e.size
	for l.tailLen > l.max/2 && len(l.tail) > 1 {
		l.cut += int64(len(l.tail[0].msg))
		l.tailLen -= l.tail[0].size
		l.tail = l.tail[1:]
	}
	if l.tailLen > l.max/2 { // one line longer than the tail: keep its end
		t := &l.tail[0]
		over := int(l.tailLen - l.max/2)
		keep := t.msg[min(over, len(t.msg)):]
		for len(keep) > 0 && !utf8.RuneStart(keep[0]) {
			keep = keep[1:]
		}
		l.cut += int64(len(t.msg) - len(keep))
		t.msg = keep
		l.tailLen -= t.size
		t.size = int64(len(l.encode(*t)))
		l.tailLen += t.size
	}
}

// cutUTF8 returns s's first n bytes or fewer, ending on a character boundary.
func cutUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Close writes what the log holds back (the cut marker and its latest lines) and closes
// the log file.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.sealed {
		if l.cut > 0 {
			l.emit(l.encode(entry{sev: "WARNING", at: l.now().UTC(), msg: fmt.Sprintf(
				"[… %d bytes cut …] (an attempt's log keeps its first and last %d bytes: UPDRAFT_LOG_MAX_BYTES)", l.cut, l.max/2)}))
		}
		for _, e := range l.tail {
			l.emit(l.encode(e))
		}
		l.tail, l.tailLen, l.sealed = nil, 0, false
	}
	l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}
