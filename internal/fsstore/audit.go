package fsstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"cloud.google.com/go/firestore"
)

// ColAudit holds the audit log: one document per action taken or refused, never changed.
const ColAudit = "audit"

// AuditEntry is one record of the audit log: who did (or tried) what, on what, when, from
// where, and how it ended.
type AuditEntry struct {
	// ID is the document id; AppendAudit picks a time-ordered one when it is empty.
	ID string    `firestore:"id" json:"id"`
	At time.Time `firestore:"at" json:"at"`
	// Who is the person's email, or what is known of them ("slack:U0123" when Slack gave no
	// email).
	Who string `firestore:"who" json:"who"`
	// Action names the operation, e.g. "task.retry", "users.grant".
	Action string `firestore:"action" json:"action"`
	// The target: a DAG, run and task, and/or a subject such as the email a grant is for.
	DagID   string `firestore:"dag_id" json:"dag_id,omitempty"`
	RunID   string `firestore:"run_id" json:"run_id,omitempty"`
	TaskID  string `firestore:"task_id" json:"task_id,omitempty"`
	Subject string `firestore:"subject" json:"subject,omitempty"`
	// From is where the request came from: "cli", "slack:U0123", "api", "ui".
	From string `firestore:"from" json:"from"`
	// Result is "ok", "refused" or "failed".
	Result string `firestore:"result" json:"result"`
	// Detail says more: what was cleared, why it was refused or failed.
	Detail string `firestore:"detail" json:"detail,omitempty"`
}

// AppendAudit stores an audit entry. An entry whose ID is already taken gives ErrExists, so
// a caller can use a request's own id to record it once.
func (s *Store) AppendAudit(ctx context.Context, e *AuditEntry) error {
	if e.ID == "" {
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		e.ID = e.At.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
	}
	return s.create(ctx, ColAudit, e.ID, e)
}

// AuditQuery selects audit entries: those of one DAG when DagID is set, else all; newest
// first, at most Limit (100 when 0).
type AuditQuery struct {
	DagID string
	Limit int
}

// ListAudit reads audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	fq := s.fs.Collection(ColAudit).Query
	what := "audit"
	if q.DagID != "" {
		fq = fq.Where("dag_id", "==", q.DagID)
		what += " of " + q.DagID
	}
	vs, err := queryAll[AuditEntry](ctx, s, fq.OrderBy("at", firestore.Desc).Limit(q.Limit), what)
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(vs))
	for i, v := range vs {
		out[i] = v.Rec
	}
	return out, nil
}
