package logemu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"cloud.google.com/go/logging/logadmin"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	logemu "github.com/updraft-dev/updraft/emulators/logging"
)

// setup starts a stand-in with a few entries and the official admin client over it.
func setup(t *testing.T) (*logadmin.Client, time.Time) {
	t.Helper()
	t.Parallel()
	srv, err := logemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c, err := logadmin.NewClient(context.Background(), "projects/p", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	add := func(project, text string, sev ltype.LogSeverity, at time.Time, labels map[string]string) {
		srv.Write(&loggingpb.LogEntry{LogName: "projects/" + project + "/logs/run.googleapis.com%2Fstdout", Timestamp: timestamppb.New(at),
			Severity: sev, Resource: &monitoredres.MonitoredResource{Type: "cloud_run_job", Labels: map[string]string{"job_name": "j"}},
			Labels: labels, Payload: &loggingpb.LogEntry_TextPayload{TextPayload: text}})
	}
	add("p", "b", ltype.LogSeverity_ERROR, t0.Add(time.Second), map[string]string{"k": "2"})
	add("p", "a", ltype.LogSeverity_INFO, t0, map[string]string{"k": "1"})
	add("p", "c", ltype.LogSeverity_DEFAULT, t0.Add(time.Second), map[string]string{"k": "3", "run.googleapis.com/x": `q"uote`})
	add("other", "elsewhere", ltype.LogSeverity_INFO, t0, nil)
	return c, t0
}

func texts(t *testing.T, c *logadmin.Client, opts ...logadmin.EntriesOption) (string, error) {
	t.Helper()
	it := c.Entries(context.Background(), opts...)
	var out []string
	for {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return strings.Join(out, ","), nil
		}
		if err != nil {
			return "", err
		}
		out = append(out, e.Payload.(string))
	}
}

func TestFiltersAsCloudLoggingReadsThem(t *testing.T) {
	c, _ := setup(t)
	cases := []struct{ filter, want string }{
		{`timestamp>="2026-01-01T00:00:00Z"`, "a,b,c"}, // oldest first; equal times in write order
		{`timestamp>"2026-01-02T03:04:05Z"`, "b,c"},
		{`severity>=ERROR AND timestamp>="2000-01-01T00:00:00Z"`, "b"},
		{`labels.k="1" OR labels.k="3" labels.k!="1" timestamp>="2000-01-01T00:00:00Z"`, "c"}, // OR binds tighter than AND
		{`NOT labels.k="2" AND resource.type="cloud_run_job" AND timestamp>="2000-01-01T00:00:00Z"`, "a,c"},
		{`labels."run.googleapis.com/x"="q\"uote" AND timestamp>="2000-01-01T00:00:00Z"`, "c"},
		{`(textPayload:"B" OR textPayload=a) AND resource.labels.job_name=j AND timestamp>="2000-01-01T00:00:00Z"`, "a,b"},
	}
	for _, tc := range cases {
		got, err := texts(t, c, logadmin.Filter(tc.filter))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.filter, got, err, tc.want)
		}
	}
	if got, err := texts(t, c, logadmin.Filter(`timestamp>="2000-01-01T00:00:00Z"`), logadmin.NewestFirst(), logadmin.PageSize(1)); err != nil || got != "c,b,a" {
		t.Errorf("newest first, a page at a time: %q, %v; want c,b,a", got, err)
	}
}

func TestFiltersItCannotReadAreInvalidArguments(t *testing.T) {
	c, _ := setup(t)
	for _, f := range []string{
		`labels.k="1 AND timestamp>="2000-01-01T00:00:00Z"`, // unclosed quote
		`jsonPayload.a.b="x" AND timestamp>="2000-01-01T00:00:00Z"`,
		`(labels.k="1" AND timestamp>="2000-01-01T00:00:00Z"`,
		`timestamp>="yesterday"`,
		`severity>=LOUD AND timestamp>="2000-01-01T00:00:00Z"`,
		`labels.k AND timestamp>="2000-01-01T00:00:00Z"`,
	} {
		_, err := texts(t, c, logadmin.Filter(f))
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "filter:") {
			t.Errorf("%s: %v; want INVALID_ARGUMENT naming the filter", f, err)
		}
	}
}
