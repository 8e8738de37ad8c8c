package joblogs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	logemu "github.com/updraft-dev/updraft/emulators/logging"
	"github.com/updraft-dev/updraft/internal/joblogs"
)

// bundle is a Logging stand-in and a reader over it.
type bundle struct {
	ctx    context.Context
	logs   *logemu.Server
	getenv func(string) string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	srv, err := logemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	env := map[string]string{joblogs.EmulatorEnv: srv.Addr}
	return &bundle{ctx: ctx, logs: srv, getenv: func(k string) string { return env[k] }}
}

// read reads an execution's output through the reader.
func (b *bundle) read(t *testing.T, x joblogs.Execution, max int64) []joblogs.Line {
	t.Helper()
	var out []joblogs.Line
	if err := joblogs.Copy(b.ctx, b.getenv, x, max, func(l joblogs.Line) { out = append(out, l) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// entry is a line of an execution's stdout as Cloud Run logs it.
func entry(project, location, job, exec, text string, at time.Time) *loggingpb.LogEntry {
	return &loggingpb.LogEntry{
		LogName: "projects/" + project + "/logs/run.googleapis.com%2Fstdout", Timestamp: timestamppb.New(at),
		Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{
			"project_id": project, "job_name": job, "location": location}},
		Labels:  map[string]string{"run.googleapis.com/execution_name": exec},
		Payload: &loggingpb.LogEntry_TextPayload{TextPayload: text},
	}
}

func execName(project, location, job, exec string) string {
	return fmt.Sprintf("projects/%s/locations/%s/jobs/%s/executions/%s", project, location, job, exec)
}

func TestFilterQuotesEveryName(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f, err := joblogs.Filter(joblogs.Execution{Name: execName("p", "asia-northeast3", `j"ob\`, `e" OR x="y`), Started: started})
	if err != nil {
		t.Fatal(err)
	}
	want := `resource.type="cloud_run_job" AND resource.labels.job_name="j\"ob\\" AND resource.labels.location="asia-northeast3"` +
		` AND labels."run.googleapis.com/execution_name"="e\" OR x=\"y" AND timestamp>="2026-03-01T09:59:00Z"`
	if f != want {
		t.Fatalf("filter\n%s\nwant\n%s", f, want)
	}
	for _, bad := range []string{"projects/p/locations/l/jobs/j", "j/executions/e", execName("p", "l", "j", "e\nAND x")} {
		if _, err := joblogs.Filter(joblogs.Execution{Name: bad}); err == nil || !strings.Contains(err.Error(), "joblogs:") {
			t.Errorf("Filter(%q) = %v; want an error naming the package", bad, err)
		}
	}
}

// TestHostileNamesReadOnlyTheirOwnExecution: an execution named to break out of the filter's
// quotes (and so match another execution's lines) reads only its own lines, through the
// stand-in's parser of the real query language.
func TestHostileNamesReadOnlyTheirOwnExecution(t *testing.T) {
	b := setup(t)
	now := time.Now()
	victim := `x-1`
	hostile := `x" OR resource.type="cloud_run_job` // would match every line of job j
	b.logs.Write(entry("p", "us-central1", "j", victim, "the victim's line", now),
		entry("p", "us-central1", "j", hostile, "the hostile one's line", now.Add(time.Millisecond)),
		entry("p", "us-central1", `j" OR resource.type="cloud_run_job`, "z", "a hostile job's line", now.Add(2*time.Millisecond)))
	got := b.read(t, joblogs.Execution{Name: execName("p", "us-central1", "j", hostile), Started: now}, 0)
	if len(got) != 1 || got[0].Text != "the hostile one's line" {
		t.Fatalf("the hostile execution read %v; want only its own line", got)
	}
	got = b.read(t, joblogs.Execution{Name: execName("p", "us-central1", `j" OR resource.type="cloud_run_job`, "z"), Started: now}, 0)
	if len(got) != 1 || got[0].Text != "a hostile job's line" {
		t.Fatalf("the hostile job read %v; want only its own line", got)
	}
	// Another project's and another location's entries are not read.
	got = b.read(t, joblogs.Execution{Name: execName("q", "us-central1", "j", victim), Started: now}, 0)
	if len(got) != 0 {
		t.Fatalf("project q read %v; the lines are project p's", got)
	}
}

// TestLongOutputKeepsItsStartAndEnd: past the bound, the first and last lines are read and a
// line in between says what was left out and where all of it is.
func TestLongOutputKeepsItsStartAndEnd(t *testing.T) {
	b := setup(t)
	start := time.Now()
	var all []*loggingpb.LogEntry
	for i := range 2500 { // more than two pages of 1000
		all = append(all, entry("p", "us-central1", "big", "big-1", fmt.Sprintf("line %04d %s", i, strings.Repeat("x", 90)), start.Add(time.Duration(i)*time.Microsecond)))
	}
	b.logs.Write(all...)
	x := joblogs.Execution{Name: execName("p", "us-central1", "big", "big-1"), Started: start, LogURI: "https://console.example/logs"}
	per := int64(100 + joblogs.LineOverhead)
	got := b.read(t, x, 100*per) // 50 lines' worth at each end
	if len(got) < 95 || len(got) > 101 {
		t.Fatalf("%d lines; want about 100 (the bound's worth)", len(got))
	}
	if !strings.HasPrefix(got[0].Text, "line 0000 ") || !strings.HasPrefix(got[len(got)-1].Text, "line 2499 ") {
		t.Fatalf("first %q, last %q; want line 0000 and line 2499", got[0].Text, got[len(got)-1].Text)
	}
	marker := -1
	for i, l := range got {
		if strings.Contains(l.Text, "not copied") {
			marker = i
		}
	}
	if marker < 1 || marker > len(got)-2 || !strings.Contains(got[marker].Text, x.LogURI) || got[marker].Severity != "WARNING" {
		t.Fatalf("no marker line naming the link between the head and the tail: %v", got[max(marker, 0)])
	}
	prev := -1
	for i, l := range got {
		if i == marker {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(l.Text, "line %d", &n); err != nil || n <= prev {
			t.Fatalf("line %d %q out of order after %d", i, l.Text, prev)
		}
		prev = n
	}
	// Unbounded, every line comes, in order, across pages.
	if got := b.read(t, x, 0); len(got) != 2500 || !strings.HasPrefix(got[1000].Text, "line 1000 ") {
		t.Fatalf("unbounded: %d lines; want 2500 in order", len(got))
	}
	// Just within the bound: no marker.
	if got := b.read(t, x, 2*2500*per); len(got) != 2500 {
		t.Fatalf("within the bound: %d lines; want all 2500 and no marker", len(got))
	}
}

// TestCloudRunStandInOutputIsReadBack: a job run on the Cloud Run stand-in, fed into the
// Logging stand-in, reads back through the reader with its streams and structured severity.
func TestCloudRunStandInOutputIsReadBack(t *testing.T) {
	b := setup(t)
	runSrv, err := runemu.Start(runemu.Config{Jobs: map[string]runemu.JobSpec{"talk": {Command: []string{"/bin/sh", "-c",
		`echo one; echo two >&2; echo '{"severity":"ERROR","message":"three"}'; printf 'no newline'; exit 4`}}}}, filepath.Join(t.TempDir(), "logs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(runSrv.Stop)
	runSrv.SetLogSink(b.logs.Write)
	jobs, err := run.NewJobsClient(b.ctx, option.WithEndpoint(runSrv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	op, err := jobs.RunJob(b.ctx, &runpb.RunJobRequest{Name: "projects/p/locations/us-central1/jobs/talk"})
	if err != nil {
		t.Fatal(err)
	}
	md, _ := op.Metadata()
	_, _ = op.Wait(b.ctx) // the execution fails (exit 4): its output is what matters
	got := b.read(t, joblogs.Execution{Name: md.GetName(), Started: md.GetCreateTime().AsTime()}, 0)
	var stdout []string
	seen := map[string]joblogs.Line{}
	for _, l := range got {
		seen[l.Text] = l
		if l.Stream == "stdout" {
			stdout = append(stdout, l.Text)
		}
	}
	if strings.Join(stdout, "|") != "one|three|no newline" {
		t.Errorf("stdout lines %q; want one, three, no newline in order", stdout)
	}
	if l := seen["two"]; l.Stream != "stderr" || l.String() != "[container stderr] two" {
		t.Errorf("the stderr line %+v (%q); want stream stderr, marked as the container's", l, l.String())
	}
	if l := seen["three"]; l.Severity != "ERROR" {
		t.Errorf("the structured line %+v; want severity ERROR from its JSON", l)
	}
}

// TestNoLoggingStandInSaysSo: a job on the Cloud Run stand-in with no Logging stand-in set
// is an error naming the variable, not a read of the real Cloud Logging.
func TestNoLoggingStandInSaysSo(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		if k == "UPDRAFT_CLOUDRUN_EMULATOR_HOST" {
			return "127.0.0.1:1"
		}
		return ""
	}
	err := joblogs.Copy(context.Background(), getenv, joblogs.Execution{Name: execName("p", "l", "j", "e")}, 0, func(joblogs.Line) {})
	if err == nil || !strings.Contains(err.Error(), joblogs.EmulatorEnv) {
		t.Fatalf("err = %v; want one naming %s", err, joblogs.EmulatorEnv)
	}
}

// BenchmarkRead10kLines reads an execution's 10,000 lines of 80 bytes from the Logging
// stand-in through logadmin (10 pages), as a cloudrun.job's final poke does.
func BenchmarkRead10kLines(b *testing.B) {
	srv, err := logemu.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	start := time.Now()
	var all []*loggingpb.LogEntry
	for i := range 10000 {
		all = append(all, entry("p", "us-central1", "bench", "bench-1", fmt.Sprintf("%06d %s", i, strings.Repeat("y", 73)), start.Add(time.Duration(i)*time.Microsecond)))
	}
	srv.Write(all...)
	getenv := func(k string) string {
		if k == joblogs.EmulatorEnv {
			return srv.Addr
		}
		return ""
	}
	x := joblogs.Execution{Name: execName("p", "us-central1", "bench", "bench-1"), Started: start}
	b.ResetTimer()
	for range b.N {
		n := 0
		if err := joblogs.Copy(context.Background(), getenv, x, 16<<20, func(joblogs.Line) { n++ }); err != nil || n != 10000 {
			b.Fatalf("%d lines, %v", n, err)
		}
	}
}
