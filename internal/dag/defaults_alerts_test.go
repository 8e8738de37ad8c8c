package dag

import (
	"strings"
	"testing"
)

// TestDefaultsCarryAlerts: defaults.alerts is the alerts block of every task without one of
// its own; a task's own block wins; a bad block is reported at its line.
func TestDefaultsCarryAlerts(t *testing.T) {
	t.Parallel()
	src := `id: x
owner: a@example.com
alerts: {slack: {channel: "#runs"}}
defaults:
  alerts: {slack: {channel: "#steps", on: [success, failure]}}
tasks:
  - {id: a, type: noop}
  - id: b
    type: noop
    alerts: {slack: {channel: "#b-only", on: [retry]}}
`
	d, err := Parse("x.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a := d.Tasks[0].Alerts; a == nil || a.Slack.Channel != "#steps" || len(a.Slack.On) != 2 {
		t.Fatalf("task a's alerts: %+v; want the defaults' block", a)
	}
	if b := d.Tasks[1].Alerts; b == nil || b.Slack.Channel != "#b-only" {
		t.Fatalf("task b's alerts: %+v; want its own block", b)
	}
	if d.Alerts.Slack.Channel != "#runs" {
		t.Fatalf("the DAG's alerts changed: %+v", d.Alerts.Slack)
	}
	bad := "id: x\nowner: a@example.com\ndefaults:\n  alerts: {slack: {channel: \"#s\", on: [sometimes]}}\ntasks:\n  - {id: a, type: noop}\n"
	if got := validateText(t, bad); got == "" || !strings.Contains(got, "x.yaml:4: defaults.alerts.slack.on") {
		t.Fatalf("a bad defaults.alerts:\n%s", got)
	}
}
