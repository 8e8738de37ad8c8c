package functions

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestSlackActionsSaysWhatIsMissing(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, _, err := SlackActions(context.Background(), getenv, slog.Default()); err == nil || !strings.Contains(err.Error(), "GOOGLE_CLOUD_PROJECT is not set") {
		t.Fatalf("no project: %v", err)
	}
	env["GOOGLE_CLOUD_PROJECT"] = "p"
	env["UPDRAFT_LEASE"] = "soon"
	if _, _, err := SlackActions(context.Background(), getenv, slog.Default()); err == nil || !strings.Contains(err.Error(), "UPDRAFT_LEASE") {
		t.Fatalf("bad engine setting: %v", err)
	}
}
