package local_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	bqemu "github.com/updraft-dev/updraft/emulators/bigquery"
	"github.com/updraft-dev/updraft/internal/local"
)

// TestBigQueryStartsOnDemandAndSaysWhenNotReady: the local BigQuery front has its address from
// the start but runs nothing until asked; a request before the emulator is up and seeded
// fails at once with "BigQuery isn't ready yet (…)" (not a hang of client retries, not a
// connection refused); once seeded, requests reach the real emulator, with the seed there.
func TestBigQueryStartsOnDemandAndSaysWhenNotReady(t *testing.T) {
	ctx := context.Background()
	if _, err := bqemu.EnsureBuilt(ctx); err != nil { // the one-time build, shared by every test
		t.Fatal(err)
	}
	release := make(chan struct{})
	var lines []string
	bq, err := local.NewBigQuery(local.BigQueryConfig{Project: "lazy-bq", LogDir: t.TempDir(),
		OnReady: func(ctx context.Context, emulator []option.ClientOption) error {
			<-release // seeding takes as long as the test says
			c, err := bigquery.NewClient(ctx, "lazy-bq", emulator...)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Dataset("seeded").Create(ctx, &bigquery.DatasetMetadata{})
		},
		OnProgress: func(s string) { lines = append(lines, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Stop()
	if s := bq.Status(); !strings.HasPrefix(s, "not started") {
		t.Fatalf("status before any need: %q", s)
	}

	c, err := bigquery.NewClient(ctx, "lazy-bq", bq.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.Dataset("seeded").Metadata(callCtx) // also asks for BigQuery: it starts now
	timedOut := callCtx.Err()
	cancel()
	if err == nil || !strings.Contains(err.Error(), "BigQuery isn't ready yet") || timedOut != nil {
		t.Fatalf("a request before BigQuery is ready: %v (deadline: %v); want a prompt \"isn't ready yet\"", err, timedOut)
	}

	// Started but not seeded: still not ready, so no task sees a half-seeded BigQuery.
	for deadline := time.Now().Add(time.Minute); bq.Status() != "seeding"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not start within a minute: %s", bq.Status())
		}
	}
	if _, err := c.Dataset("seeded").Metadata(ctx); err == nil || !strings.Contains(err.Error(), "BigQuery isn't ready yet (seeding)") {
		t.Fatalf("a request while seeding: %v", err)
	}

	close(release)
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := bq.Wait(waitCtx); err != nil {
		t.Fatal(err)
	}
	if err := local.WaitBigQuery(waitCtx, bq.Host(), "lazy-bq", func(string) {}); err != nil {
		t.Fatal(err)
	}
	it := c.Datasets(ctx)
	var names []string
	for {
		ds, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatalf("through the front once ready: %v", err)
		}
		names = append(names, ds.DatasetID)
	}
	if len(names) != 1 || names[0] != "seeded" {
		t.Fatalf("datasets through the front: %v; want the seeded one", names)
	}
	if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "ready at "+bq.Host()) {
		t.Fatalf("progress lines: %q", lines)
	}
}
