package dag

// Validation and DAG.Location must agree on every machine: the CLI on a laptop, CI, and the
// distroless images on Cloud Run, some of which ship no zoneinfo. Embedding the time zone
// database (about 450 KB) makes time.LoadLocation give the same answer everywhere.
import _ "time/tzdata"
