package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// jsonText is v as JSON for a person to read: `&&` and `<` as they are, not \u0026 and \u003c
// (encoding/json escapes them for HTML by default).
func jsonText(v any, indent bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimRight(b.String(), "\n")
}

// readableJSON re-encodes stored JSON text (rendered arguments) without HTML escapes; text
// that is not JSON is returned as it is.
func readableJSON[T ~string | ~[]byte](s T) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return string(s)
	}
	return jsonText(v, false)
}

// consoleHandler is the log format for a person at a terminal: one line per record, the time
// with its zone named, the level, the message, then the attributes as key=value.
//
//	17:10:12 KST INFO  run started dag_id=hello_chain run_id=manual__2026-12-07T08:10:12Z
type consoleHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	level slog.Leveler
	attrs []slog.Attr
	group string
}

func newConsoleHandler(w io.Writer, level slog.Leveler) *consoleHandler {
	return &consoleHandler{w: w, mu: &sync.Mutex{}, level: level}
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	fmt.Fprintf(&b, "%s %-5s %s", t.Local().Format("15:04:05 MST"), r.Level.String(), r.Message)
	write := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		v := a.Value.String()
		if strings.ContainsAny(v, " \t\n\"") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", key, v)
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(func(a slog.Attr) bool { write(a); return true })
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *consoleHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clone(h.attrs), attrs...)
	return &c
}

func (h *consoleHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// consoleLines is a writer that shows JSON log lines (a worker's own log, in Cloud Logging's
// shape) in the console format, so a terminal gets one format; other lines pass as they are.
type consoleLines struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func newConsoleLines(w io.Writer) *consoleLines { return &consoleLines{w: w} }

func (c *consoleLines) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			break
		}
		line := c.buf[:i]
		if _, err := io.WriteString(c.w, consoleLine(line)+"\n"); err != nil {
			return len(p), err
		}
		c.buf = c.buf[i+1:]
	}
	return len(p), nil
}

// consoleLine rewrites one JSON log line ({"time", "severity", "message", ...}) as
// "15:04:05 KST LEVEL message key=value ...".
func consoleLine(line []byte) string {
	var m map[string]any
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &m) != nil {
		return string(line)
	}
	msg, ok := m["message"].(string)
	if !ok {
		return string(line)
	}
	t := time.Now()
	if s, ok := m["time"].(string); ok {
		if p, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t = p
		}
	}
	sev, _ := m["severity"].(string)
	if sev == "WARNING" {
		sev = "WARN"
	}
	delete(m, "message")
	delete(m, "time")
	delete(m, "severity")
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-5s %s", t.Local().Format("15:04:05 MST"), sev, msg)
	for _, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			v = jsonText(m[k], false)
		}
		if strings.ContainsAny(v, " \t\n\"") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}
