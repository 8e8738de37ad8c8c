package local_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/scheduler"
)

// TestCloudRunJobOutputIsInTheTaskLog (issue 18): a cloudrun.job task's container output —
// stdout, stderr and a structured line, holding a secret — is in the attempt's log as
// `updraft logs` and the console's (and so the API's) log read show it, with the secret
// masked and the failing exit reported; the console link line stays.
func TestCloudRunJobOutputIsInTheTaskLog(t *testing.T) {
	project := emutest.Project(t)
	s := startDeferStackProject(t, project, pushDeadline)
	s.env = append([]string{"GOOGLE_CLOUD_PROJECT=" + project, "UPDRAFT_LOG_DIR=" + s.logDir}, testStandIns.Env()...)
	for _, kv := range os.Environ() { // the emulators' hosts, for the CLI's store
		if strings.HasPrefix(kv, "FIRESTORE_EMULATOR_HOST=") || strings.HasPrefix(kv, "PUBSUB_EMULATOR_HOST=") {
			s.env = append(s.env, kv)
		}
	}
	secret := fmt.Sprintf("jobtok-%d-s3cr3t", time.Now().UnixNano())
	sm, err := secrets.Open(s.ctx, project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	if err := sm.Set(s.ctx, "updraft-export-token", secret); err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf("talky-%d", time.Now().UnixNano()%1e9)
	testStandIns.CloudRun.SetJob(job, runemu.JobSpec{Command: []string{"/bin/sh", "-c",
		`echo "export line 1"; echo "export line 2 token=$TOKEN"; echo "disk almost full" >&2; ` +
			`echo '{"severity":"ERROR","message":"giving up"}'; echo "export line 3"; exit 3`}})
	s.deploy(t, fmt.Sprintf(`id: talky_export
owner: owner@example.com
tasks:
  - id: export
    type: cloudrun.job
    poke_interval: 1s
    with:
      job: "projects/p/locations/us-central1/jobs/%s"
      env: {TOKEN: '{{ secret "updraft-export-token" }}'}
      poll_interval: 500ms
`, job))
	r, err := s.stack.Engine.Trigger(s.ctx, "talky_export", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.waitRun(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed (the job exits 3)", got)
	}

	out, errOut, code := s.cli("logs", r.DagID+"/"+r.RunID, "export")
	if code != 0 {
		t.Fatalf("updraft logs: exit %d: %s", code, errOut)
	}
	want := []string{"[container stdout] export line 1", "[container stdout] export line 2 token=***",
		"[container stderr] disk almost full", "[container stdout] giving up", "[container stdout] export line 3",
		"exit code 3", "(tag "} // the start line, with its console link, stays
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("updraft logs lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, secret) {
		t.Errorf("updraft logs shows the secret:\n%s", out)
	}
	i1, i2, i3 := strings.Index(out, "export line 1"), strings.Index(out, "export line 2"), strings.Index(out, "export line 3")
	if !(i1 < i2 && i2 < i3) {
		t.Errorf("the container's stdout is out of order (%d, %d, %d):\n%s", i1, i2, i3, out)
	}

	// The console's log read (the task page and GET .../attempts/{try}/log).
	acc := access.New(s.stack.Store, nil)
	if _, err := acc.Grant(s.ctx, "viewer@example.com", access.Viewer, access.Actor{Who: "test", From: "test"}); err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Config{Engine: s.stack.Engine, Store: s.stack.Store, Access: acc, Logs: console.FileLogs{}})
	chunk, err := c.Log(s.ctx, console.Caller{Email: "viewer@example.com"}, r.DagID, r.RunID, "export", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sev := map[string]string{}
	var all strings.Builder
	for _, e := range chunk.Entries {
		sev[e.Message] = e.Severity
		all.WriteString(e.Message + "\n")
	}
	if sev["[container stdout] giving up"] != "ERROR" || sev["[container stdout] export line 1"] != "INFO" {
		t.Errorf("the console's log entries %v; want the structured line at ERROR and plain lines at INFO", sev)
	}
	if !strings.Contains(all.String(), "export line 2 token=***") || strings.Contains(all.String(), secret) {
		t.Errorf("the console's log does not show the masked line, or shows the secret:\n%s", all.String())
	}
}
