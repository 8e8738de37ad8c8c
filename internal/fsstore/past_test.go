package fsstore_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// A past attempt keeps its rendered arguments and its error clipped to MaxPastText, cut on a
// character boundary and saying so; short ones are kept whole.
func TestPastAttemptsKeepTheirTextsClipped(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("é", fsstore.MaxPastText) // 2 bytes a character: a cut may fall inside one
	ti := &scheduler.TaskInstance{Attempt: &scheduler.Attempt{ID: "1", State: scheduler.AttemptFailed, Rendered: `{"sql":"` + long + `"}`,
		Error: "x" + long, XCom: `{"a":1}`}}
	past := fsstore.PastAfterClaim(ti, now)
	if len(past) != 1 {
		t.Fatalf("%d past attempts; want 1", len(past))
	}
	for name, s := range map[string]string{"rendered": past[0].Rendered, "error": past[0].Error} {
		if !utf8.ValidString(s) || len(s) > fsstore.MaxPastText+64 || !strings.HasSuffix(s, "bytes)") || !strings.Contains(s, "clipped from") {
			t.Fatalf("past %s: %d bytes, valid UTF-8 %v, %q…; want clipped to about %d bytes, saying so", name, len(s), utf8.ValidString(s), s[:min(len(s), 40)], fsstore.MaxPastText)
		}
	}
	if past[0].XCom != "" {
		t.Fatalf("past XCom %q; want none", past[0].XCom)
	}
	if ti.Attempt.Rendered != `{"sql":"`+long+`"}` {
		t.Fatal("clipping the past attempt changed the latest one")
	}
	ti.PastAttempts, ti.Attempt = past, &scheduler.Attempt{ID: "2", State: scheduler.AttemptFailed, Rendered: `{"a":1}`, Error: "boom"}
	past = fsstore.PastAfterClaim(ti, now)
	if len(past) != 2 || past[1].Rendered != `{"a":1}` || past[1].Error != "boom" {
		t.Fatalf("short texts: %+v; want kept whole", past[1])
	}
}
