package joblogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/logging"
	"cloud.google.com/go/logging/logadmin"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	// EmulatorEnv points the reader at the local Logging stand-in (emulators/logging, whose
	// EnvVar it mirrors: the worker must not import the stand-in).
	EmulatorEnv = "UPDRAFT_LOGGING_EMULATOR_HOST"
	// cloudRunEmulatorEnv is set when jobs run on the local Cloud Run stand-in: their output
	// is then never in the real Cloud Logging.
	cloudRunEmulatorEnv = "UPDRAFT_CLOUDRUN_EMULATOR_HOST"
	// skew is how much earlier than the execution's start an entry may be stamped.
	skew = time.Minute
	// pageSize is Cloud Logging's largest page: the fewest reads (60 a minute per project).
	pageSize = 1000
	// LineOverhead is what each line counts towards the bound besides its text: about what an
	// attempt log's JSON line adds around a message (time, severity, the attempt's labels), so
	// output read within the bound also fits the log's.
	LineOverhead = 256
)

// Execution names the execution whose output is read.
type Execution struct {
	// Name is projects/PROJECT/locations/LOCATION/jobs/JOB/executions/EXECUTION.
	Name string
	// Started is when it started (or was created); nothing older than a minute before it is
	// read. The zero time reads from the start of the log's retention.
	Started time.Time
	// LogURI is the Cloud console's link to the execution's logs, named when output is cut.
	LogURI string
}

// Line is one line of a container's output.
type Line struct {
	Time time.Time
	// Severity is Cloud Logging's, upper case ("DEFAULT" for plain text).
	Severity string
	// Stream is the log the line came from: "stdout", "stderr", or another of Cloud Run's
	// logs (e.g. "varlog/system").
	Stream string
	// Text is the line: a text payload, or a structured line's message (its JSON without one).
	Text string
}

// String is the line as the attempt's log shows it, marked as the container's.
func (l Line) String() string {
	if l.Stream == "" {
		return l.Text
	}
	return "[container " + l.Stream + "] " + l.Text
}

var executionName = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)/executions/([^/]+)$`)

// parts splits an execution's name into its project, location, job and execution ids.
func parts(name string) (project, location, job, exec string, err error) {
	m := executionName.FindStringSubmatch(name)
	if m == nil {
		return "", "", "", "", fmt.Errorf("joblogs: %q is not an execution name (projects/P/locations/L/jobs/J/executions/E)", name)
	}
	return m[1], m[2], m[3], m[4], nil
}

// quote is a string literal of Cloud Logging's query language: in double quotes, with
// backslashes and double quotes escaped, so no value can end the literal early. Control
// characters have no place in a resource name and are refused.
func quote(what, s string) (string, error) {
	for i, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return "", fmt.Errorf("joblogs: %s %q has a control or invalid character at byte %d", what, s, i)
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// Filter is the Cloud Logging filter for an execution's container output. Every value is a
// quoted literal, so hostile names stay values.
func Filter(x Execution) (string, error) {
	_, location, job, exec, err := parts(x.Name)
	if err != nil {
		return "", err
	}
	qJob, err := quote("job", job)
	if err != nil {
		return "", err
	}
	qLoc, err := quote("location", location)
	if err != nil {
		return "", err
	}
	qExec, err := quote("execution", exec)
	if err != nil {
		return "", err
	}
	f := `resource.type="cloud_run_job" AND resource.labels.job_name=` + qJob +
		` AND resource.labels.location=` + qLoc +
		` AND labels."run.googleapis.com/execution_name"=` + qExec
	since := time.Unix(0, 0).UTC()
	if !x.Started.IsZero() {
		since = x.Started.Add(-skew).UTC()
	}
	// Always a timestamp: without one logadmin reads only the last 24 hours.
	return f + ` AND timestamp>="` + since.Format(time.RFC3339Nano) + `"`, nil
}

// Reader reads executions' output from Cloud Logging (or its stand-in).
type Reader struct {
	client *logadmin.Client
}

// Open connects to Cloud Logging for project, or to the stand-in named by EmulatorEnv.
// Jobs on the Cloud Run stand-in without a Logging stand-in have nowhere to be read from.
func Open(ctx context.Context, getenv func(string) string, project string) (*Reader, error) {
	var opts []option.ClientOption
	switch host := getenv(EmulatorEnv); {
	case host != "":
		opts = []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
	case getenv(cloudRunEmulatorEnv) != "":
		return nil, fmt.Errorf("joblogs: the job ran on the Cloud Run stand-in (%s) but %s names no Logging stand-in to read its output from", cloudRunEmulatorEnv, EmulatorEnv)
	}
	c, err := logadmin.NewClient(ctx, "projects/"+project, opts...)
	if err != nil {
		return nil, fmt.Errorf("joblogs: connect to Cloud Logging: %w", err)
	}
	return &Reader{client: c}, nil
}

// Close closes the connection.
func (r *Reader) Close() error { return r.client.Close() }

// Read hands x's output lines to emit, oldest first, keeping within maxBytes (0: unbounded;
// each line counts its text and LineOverhead): when the output is longer, its first and last
// halves are read (two queries, not the whole log) and a line in between says what was left
// out and where all of it is. A single line longer than a quarter of maxBytes keeps its start.
func (r *Reader) Read(ctx context.Context, x Execution, maxBytes int64, emit func(Line)) error {
	filter, err := Filter(x)
	if err != nil {
		return err
	}
	half := maxBytes / 2
	fit := func(l *Line) int64 {
		if maxBytes > 0 && int64(len(l.Text)) > maxBytes/4 {
			l.Text = cut(l.Text, int(maxBytes/4)) + " […]"
		}
		return int64(len(l.Text)) + LineOverhead
	}
	it := r.client.Entries(ctx, logadmin.Filter(filter), logadmin.PageSize(pageSize))
	var used int64
	var last *logging.Entry // the last entry emitted
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("joblogs: read the output of %s from Cloud Logging: %w", x.Name, err)
		}
		l := line(e)
		n := fit(&l)
		if maxBytes > 0 && used+n > half {
			break
		}
		used += n
		emit(l)
		last = e
	}
	// Over half the bound: the tail, newest first, down to what was emitted.
	it = r.client.Entries(ctx, logadmin.Filter(filter), logadmin.PageSize(pageSize), logadmin.NewestFirst())
	var tail []Line
	used = 0
	gap := true
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			gap = false
			break
		}
		if err != nil {
			return fmt.Errorf("joblogs: read the end of the output of %s from Cloud Logging: %w", x.Name, err)
		}
		if last != nil && !after(e, last) {
			gap = false
			break
		}
		l := line(e)
		n := fit(&l)
		if used+n > half {
			break
		}
		used += n
		tail = append(tail, l)
	}
	if gap {
		where := x.LogURI
		if where == "" {
			where = "Cloud Logging, filter " + filter
		}
		var from, to time.Time
		if last != nil {
			from = last.Timestamp
		}
		if len(tail) > 0 {
			to = tail[len(tail)-1].Time
		}
		emit(Line{Time: to, Severity: "WARNING", Text: fmt.Sprintf(
			"[… container output between %s and %s not copied: an attempt's log keeps its first and last %d bytes (UPDRAFT_LOG_MAX_BYTES); all of it: %s …]",
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), half, where)})
	}
	for i := len(tail) - 1; i >= 0; i-- {
		emit(tail[i])
	}
	return nil
}

// after reports whether a comes after b in Cloud Logging's order (timestamp, then insertId).
func after(a, b *logging.Entry) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.After(b.Timestamp)
	}
	return a.InsertID > b.InsertID
}

// cut returns s's first n bytes or fewer, ending on a character boundary.
func cut(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// line reads an entry as a line of output.
func line(e *logging.Entry) Line {
	l := Line{Time: e.Timestamp, Severity: strings.ToUpper(e.Severity.String())}
	if i := strings.Index(e.LogName, "/logs/"); i >= 0 {
		l.Stream = strings.TrimPrefix(e.LogName[i+len("/logs/"):], "run.googleapis.com/")
	}
	switch p := e.Payload.(type) {
	case string:
		l.Text = p
	case *structpb.Struct:
		if m, ok := p.GetFields()["message"]; ok {
			l.Text = m.GetStringValue()
		} else {
			b, _ := json.Marshal(p.AsMap())
			l.Text = string(b)
		}
	case nil:
	default:
		b, _ := json.Marshal(p)
		l.Text = string(b)
	}
	l.Text = strings.TrimRight(l.Text, "\n")
	return l
}

// Copy reads x's output (Open, Read, Close) for a task: the project is the execution's.
func Copy(ctx context.Context, getenv func(string) string, x Execution, maxBytes int64, emit func(Line)) error {
	project, _, _, _, err := parts(x.Name)
	if err != nil {
		return err
	}
	r, err := Open(ctx, getenv, project)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Read(ctx, x, maxBytes, emit)
}
