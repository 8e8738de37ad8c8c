package cloudlog_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/updraft-dev/updraft/internal/cloudlog"
)

// line logs one line through a cloudlog logger and decodes it.
func line(t *testing.T, log func(*bytes.Buffer)) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log(&buf)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not a JSON line: %q: %v", buf.String(), err)
	}
	return got
}

func TestLinesUseCloudLoggingKeys(t *testing.T) {
	warn := line(t, func(b *bytes.Buffer) { cloudlog.New(b).Warn("worker gone", "event", "lost_worker") })
	if warn["message"] != "worker gone" || warn["severity"] != "WARNING" || warn["event"] != "lost_worker" {
		t.Errorf("warn line = %v; want message, severity WARNING and the event field", warn)
	}
	if _, ok := warn["msg"]; ok {
		t.Errorf("the line keeps slog's msg key: %v", warn)
	}
	if e := line(t, func(b *bytes.Buffer) { cloudlog.New(b).Error("boom") }); e["severity"] != "ERROR" {
		t.Errorf("error line = %v; want severity ERROR", e)
	}
}
