package runner

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/scheduler"
)

func envelope(data []byte) string {
	return fmt.Sprintf(`{"message":{"data":%q,"messageId":"7"},"subscription":"s"}`, base64.StdEncoding.EncodeToString(data))
}

func TestDecodePushedAttempt(t *testing.T) {
	t.Parallel()
	ref := scheduler.AttemptRef{DagID: "d", RunID: "r", TaskID: "t", TryNumber: 1, AttemptID: "a1"}
	good, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ref, Type: "shell", TimeoutSeconds: 60})
	got, id, err := decodePushedAttempt(strings.NewReader(envelope(good)))
	if err != nil || got != ref || id != "7" {
		t.Fatalf("good message: %+v %q %v", got, id, err)
	}
	cancel, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ref, Type: "shell", CancelJob: `{"kind":"bigquery"}`})
	noType, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ref})
	noRef, _ := json.Marshal(scheduler.TaskMessage{Type: "shell"})
	for _, c := range []struct{ name, body, want string }{
		{"not JSON", "hello", "not a Pub/Sub push envelope"},
		{"no data", `{"message":{"messageId":"7"}}`, "no message data"},
		{"data not JSON", envelope([]byte("not json")), "not JSON"},
		{"no type", envelope(noType), "no type"},
		{"no attempt", envelope(noRef), "message data"},
		{"a cancel request", envelope(cancel), "cancel_job"},
		{"too large", `{"message":{"data":"` + strings.Repeat("A", maxRunnerBody) + `"}}`, "over"},
	} {
		if _, _, err := decodePushedAttempt(strings.NewReader(c.body)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.want)
		}
	}
}
