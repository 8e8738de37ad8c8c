// Package cloudlog makes the services' own logs readable by Cloud Logging: JSON lines whose
// keys are the ones it reads from a container's output ("message", "severity"), so a line's
// severity and its fields (jsonPayload.*, which the log-based metrics in infra/ filter on)
// arrive as structured data.
package cloudlog

import (
	"io"
	"log/slog"
)

// New returns a logger writing JSON lines to w with Cloud Logging's key names.
func New(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}))
}

// ReplaceAttr renames slog's message and level keys to Cloud Logging's, and slog's WARN to
// Cloud Logging's WARNING.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Key {
	case slog.MessageKey:
		a.Key = "message"
	case slog.LevelKey:
		a.Key = "severity"
		if lv, ok := a.Value.Any().(slog.Level); ok && lv == slog.LevelWarn {
			a.Value = slog.StringValue("WARNING")
		}
	}
	return a
}
