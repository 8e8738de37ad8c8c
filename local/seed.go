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

func isAlreadyExists(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == 409
}
