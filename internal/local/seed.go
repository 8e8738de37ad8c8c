package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// ExamplesDataset is the BigQuery dataset the example DAGs read and write locally.
const ExamplesDataset = "updraft_examples"

// SeedExamples creates the examples' dataset on the local BigQuery emulator: `jobs`, with the
// columns of INFORMATION_SCHEMA.JOBS the usage example reads (the emulator has no
// INFORMATION_SCHEMA.JOBS) and a few jobs per day around `around`, and `orders`, the target of
// the orders example. Seeding again changes nothing.
func SeedExamples(ctx context.Context, project string, around time.Time, opts ...option.ClientOption) error {
	c, err := bigquery.NewClient(ctx, project, opts...)
	if err != nil {
		return fmt.Errorf("seed examples: %w", err)
	}
	defer c.Close()
	ds := c.Dataset(ExamplesDataset)
	if err := ds.Create(ctx, &bigquery.DatasetMetadata{Location: "US"}); err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("seed examples: create dataset: %w", err)
	}
	if err := seedEvents(ctx, c, around); err != nil {
		return err
	}
	jobs := ds.Table("jobs")
	if _, err := jobs.Metadata(ctx); err == nil {
		return nil // seeded before
	}
	ddl := []string{
		"CREATE TABLE IF NOT EXISTS " + ExamplesDataset + ".orders (id INT64, customer STRING, amount FLOAT64, order_date DATE)",
		"CREATE TABLE " + ExamplesDataset + ".jobs (creation_time TIMESTAMP, user_email STRING, job_type STRING, total_bytes_billed INT64)",
	}
	var rows []string
	users := []string{"analyst.kim@example.com", "etl@example.com", "dashboards@example.com"}
	for d := -30; d <= 2; d++ {
		day := around.AddDate(0, 0, d).UTC().Truncate(24 * time.Hour)
		for i, u := range users {
			at := day.Add(time.Duration(3+i*5) * time.Hour)
			rows = append(rows, fmt.Sprintf("(TIMESTAMP %q, %q, %q, %d)", at.Format("2006-01-02 15:04:05"), u, "QUERY", int64(i+1)<<30))
		}
	}
	ddl = append(ddl, "INSERT INTO "+ExamplesDataset+".jobs (creation_time, user_email, job_type, total_bytes_billed) VALUES "+strings.Join(rows, ", "))
	for _, q := range ddl {
		job, err := c.Query(q).Run(ctx)
		if err == nil {
			_, err = job.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("seed examples: %s: %w", strings.SplitN(q, "(", 2)[0], err)
		}
	}
	return nil
}

// EventSources are the sources of the seeded event exports (events_to_marts_daily).
var EventSources = []string{"orders", "refunds", "sessions"}

// seedEvents creates the daily event exports events_YYYYMMDD that events_to_marts_daily waits
// for, for the three days up to around (in Asia/Seoul, the example's timezone), and an empty
// one for the day before those: a day with nothing to load. Shards already there are kept.
func seedEvents(ctx context.Context, c *bigquery.Client, around time.Time) error {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		return err
	}
	for d := -3; d <= 0; d++ {
		day := around.In(seoul).AddDate(0, 0, d)
		table := "events_" + day.Format("20060102")
		if _, err := c.Dataset(ExamplesDataset).Table(table).Metadata(ctx); err == nil {
			continue
		}
		q := []string{"CREATE TABLE " + ExamplesDataset + "." + table + " (event_id INT64, source STRING, amount FLOAT64)"}
		if d > -3 {
			var rows []string
			for i := range 6 {
				rows = append(rows, fmt.Sprintf("(%d, %q, %d.5)", i+1, EventSources[i%len(EventSources)], 10+i))
			}
			q = append(q, "INSERT INTO "+ExamplesDataset+"."+table+" (event_id, source, amount) VALUES "+strings.Join(rows, ", "))
		}
		for _, s := range q {
			job, err := c.Query(s).Run(ctx)
			if err == nil {
				_, err = job.Wait(ctx)
			}
			if err != nil {
				return fmt.Errorf("seed examples: %s: %w", table, err)
			}
		}
	}
	return nil
}

func isAlreadyExists(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == 409
}
