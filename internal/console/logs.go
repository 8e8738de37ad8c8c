package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/logging/logadmin"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/updraft-dev/updraft/tasks"
)

// Log errors readers return.
var (
	// ErrLogExpired means the log is gone: past retention, or deleted.
	ErrLogExpired = errors.New("log expired")
	// ErrNoLog means this reader cannot read the attempt's log (e.g. a local reader for a
	// log kept in Cloud Logging).
	ErrNoLog = errors.New("log not readable here")
)

// LogReader reads an attempt's log after a cursor. It returns the entries (at most q.Limit)
// and the cursor to ask with next; ErrLogExpired when the log is gone.
type LogReader interface {
	ReadLog(ctx context.Context, q LogQuery) ([]LogEntry, int64, error)
}

// LogQuery names an attempt's log and where to read from.
type LogQuery struct {
	// Ref is the attempt's log_ref ("file:PATH" locally).
	Ref string
	// Refs, when set, are the log_refs of every attempt of the try, oldest first, Ref last:
	// a deferred task's start and its pokes share a try and each write a log of their own.
	// FileLogs reads them as one log; CloudLogs finds them all by the try's labels.
	Refs []string
	// The labels the worker wrote the log under.
	DagID, RunID, TaskID string
	Try                  int
	// Started is when the attempt started (no entry is older).
	Started time.Time
	// After is the cursor (0 from the start); Limit bounds the entries.
	After int64
	Limit int
}

// FileLogs reads the logs kept on disk locally: log_ref "file:PATH", JSON lines; the cursor
// is a byte offset (into the files of q.Refs one after the other). A missing file is an
// expired log.
type FileLogs struct{}

var _ LogReader = FileLogs{}

// ReadLog implements LogReader.
func (FileLogs) ReadLog(ctx context.Context, q LogQuery) ([]LogEntry, int64, error) {
	if len(q.Refs) <= 1 {
		return readLogFile(q)
	}
	// Earlier attempts' files are finished: skip the ones the cursor is past, then read on
	// from file to file.
	var base int64
	var out []LogEntry
	found := false
	for i, ref := range q.Refs {
		one := q
		one.Ref, one.After = ref, max(q.After-base, 0)
		if q.Limit > 0 {
			one.Limit = q.Limit - len(out)
		}
		if i < len(q.Refs)-1 {
			path, _ := strings.CutPrefix(ref, "file:")
			fi, err := os.Stat(path)
			if err != nil { // an earlier attempt with no log: nothing to read there
				continue
			}
			found = true
			if one.After >= fi.Size() {
				base += fi.Size()
				continue
			}
			es, next, err := readLogFile(one)
			if err != nil {
				return nil, q.After, err
			}
			out = append(out, es...)
			if next < fi.Size() { // the limit was reached in this file
				return out, base + next, nil
			}
			base += fi.Size()
			continue
		}
		es, next, err := readLogFile(one)
		if errors.Is(err, ErrLogExpired) && found {
			return out, base, nil
		}
		if err != nil {
			return nil, q.After, err
		}
		return append(out, es...), base + next, nil
	}
	return out, q.After, nil
}

// readLogFile reads one attempt's log file, q.Ref.
func readLogFile(q LogQuery) ([]LogEntry, int64, error) {
	path, ok := strings.CutPrefix(q.Ref, "file:")
	if !ok {
		if q.Ref == "" {
			return nil, q.After, fmt.Errorf("%w: the attempt has no log yet", ErrNoLog)
		}
		return nil, q.After, fmt.Errorf("%w: log ref %q is not a local file", ErrNoLog, q.Ref)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, q.After, ErrLogExpired
	}
	if err != nil {
		return nil, q.After, err
	}
	defer f.Close()
	if _, err := f.Seek(q.After, io.SeekStart); err != nil {
		return nil, q.After, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	next := q.After
	var out []LogEntry
	for q.Limit <= 0 || len(out) < q.Limit {
		line, err := r.ReadBytes('\n')
		if err != nil { // EOF, or a line still being written: read it next time
			break
		}
		next += int64(len(line))
		var e tasks.Entry
		if json.Unmarshal(line, &e) != nil {
			out = append(out, LogEntry{Message: strings.TrimRight(string(line), "\n")})
			continue
		}
		out = append(out, LogEntry{Time: e.Time, Severity: e.Severity, Message: e.Message})
	}
	return out, next, nil
}

// CloudLogs reads logs from Cloud Logging by the labels the worker writes (dag_id, run_id,
// task_id, try_number), polling with a filter; the cursor is the last entry's timestamp in
// Unix nanoseconds. A log older than Retention is expired.
type CloudLogs struct {
	Client *logadmin.Client
	// Retention is how long logs are kept (30 days when 0).
	Retention time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

var _ LogReader = (*CloudLogs)(nil)

// ReadLog implements LogReader.
func (l *CloudLogs) ReadLog(ctx context.Context, q LogQuery) ([]LogEntry, int64, error) {
	now, ret := time.Now, l.Retention
	if l.Now != nil {
		now = l.Now
	}
	if ret <= 0 {
		ret = 30 * 24 * time.Hour
	}
	if !q.Started.IsZero() && q.Started.Before(now().Add(-ret)) {
		return nil, q.After, ErrLogExpired
	}
	filter := CloudLogFilter(q)
	it := l.Client.Entries(ctx, logadmin.Filter(filter))
	next := q.After
	var out []LogEntry
	for q.Limit <= 0 || len(out) < q.Limit {
		e, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			return nil, q.After, fmt.Errorf("console: read Cloud Logging: %w", err)
		}
		le := LogEntry{Time: e.Timestamp, Severity: e.Severity.String()}
		switch p := e.Payload.(type) {
		case string:
			le.Message = p
		case *structpb.Struct:
			if m, ok := p.GetFields()["message"]; ok {
				le.Message = m.GetStringValue()
			} else {
				b, _ := json.Marshal(p.AsMap())
				le.Message = string(b)
			}
		default:
			le.Message = fmt.Sprint(p)
		}
		out = append(out, le)
		next = e.Timestamp.UnixNano()
	}
	return out, next, nil
}

// CloudLogFilter is the Cloud Logging filter for one try's entries after the cursor.
func CloudLogFilter(q LogQuery) string {
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	f := fmt.Sprintf(`labels.dag_id=%s AND labels.run_id=%s AND labels.task_id=%s AND labels.try_number="%d"`,
		quote(q.DagID), quote(q.RunID), quote(q.TaskID), q.Try)
	since := q.Started.Add(-time.Minute)
	if q.After > 0 {
		f += ` AND timestamp>"` + time.Unix(0, q.After).UTC().Format(time.RFC3339Nano) + `"`
	} else if !q.Started.IsZero() {
		f += ` AND timestamp>="` + since.UTC().Format(time.RFC3339Nano) + `"`
	}
	return f
}
