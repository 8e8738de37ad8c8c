package fsstore

import (
	"context"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/updraft-dev/updraft/scheduler"
)

// Collections the alerter keeps its state in (package alerts decides; these store it).
const (
	// ColAlertSent holds one claim per alert (which alert, which channel): created before the
	// alert is posted, so a duplicated event never posts twice.
	ColAlertSent = "alert_sent"
	// ColAlertThreads holds one document per run and channel: the parent message's ts, so the
	// run's later alerts go to its thread.
	ColAlertThreads = "alert_threads"
	// ColAlertDigests holds the digest's cursor, one document per digest channel.
	ColAlertDigests = "alert_digests"
)

// Alert claim and thread states.
const (
	AlertPending = "pending" // claimed; the Slack call may be in flight
	AlertSent    = "sent"    // posted
	AlertFailed  = "failed"  // given up on after retries (the failure was logged)
	AlertPosted  = "posted"  // a thread whose parent message exists
)

// AlertClaim de-duplicates one alert. Its document id names the alert: the event (attempt
// and kind, or run and SLA) and the channel.
type AlertClaim struct {
	DagID string `firestore:"dag_id" json:"dag_id"`
	RunID string `firestore:"run_id" json:"run_id"`
	// Kind is the alert's event: failure, retry, success, sla_miss, run_success, run_failed,
	// or refresh (the parent updated with the run's final state).
	Kind    string `firestore:"kind" json:"kind"`
	Channel string `firestore:"channel" json:"channel"`
	State   string `firestore:"state" json:"state"`
	// Claim names the holder; ClaimedAt is when it claimed. A pending claim older than the
	// alerter's bound may be taken over by a later delivery.
	Claim     string    `firestore:"claim" json:"claim"`
	ClaimedAt time.Time `firestore:"claimed_at" json:"claimed_at"`
	TS        string    `firestore:"ts" json:"ts,omitempty"`
	Error     string    `firestore:"error" json:"error,omitempty"`
	UpdatedAt time.Time `firestore:"updated_at" json:"updated_at"`
	// ExpireAt lets Firestore's TTL delete the claim with its run.
	ExpireAt time.Time `firestore:"expire_at" json:"-"`
}

// AlertThread is a run's thread in one channel: who posts its parent, and once posted, where.
type AlertThread struct {
	DagID     string    `firestore:"dag_id" json:"dag_id"`
	RunID     string    `firestore:"run_id" json:"run_id"`
	Channel   string    `firestore:"channel" json:"channel"`
	State     string    `firestore:"state" json:"state"` // pending | posted
	Claim     string    `firestore:"claim" json:"claim"`
	ClaimedAt time.Time `firestore:"claimed_at" json:"claimed_at"`
	// ChannelID and TS locate the parent message (Slack's channel id, the message's ts).
	ChannelID string `firestore:"channel_id" json:"channel_id,omitempty"`
	TS        string `firestore:"ts" json:"ts,omitempty"`
	// Parent is what the parent message shows beside the run's state (the alert that posted
	// it), as the alerter encodes it.
	Parent    string    `firestore:"parent" json:"parent,omitempty"`
	UpdatedAt time.Time `firestore:"updated_at" json:"updated_at"`
	ExpireAt  time.Time `firestore:"expire_at" json:"-"`
}

// DigestCursor is where the failure digest of one channel stands: the next digest lists the
// tasks that failed from Since, and is due at NextAt.
type DigestCursor struct {
	Channel   string    `firestore:"channel" json:"channel"`
	Since     time.Time `firestore:"since" json:"since"`
	NextAt    time.Time `firestore:"next_at" json:"next_at"`
	UpdatedAt time.Time `firestore:"updated_at" json:"updated_at"`
}

// createAt creates a document and returns its update time; ErrExists if it is there.
func (s *Store) createAt(ctx context.Context, col, id string, data any) (time.Time, error) {
	res, err := s.fs.Collection(col).Doc(id).Create(ctx, data)
	s.wrote(col, id, err)
	if err != nil {
		return time.Time{}, mapErr("fsstore: create "+col+"/"+id, err)
	}
	return res.UpdateTime, nil
}

// CreateAlertClaim claims an alert; ErrExists means another delivery claimed it first.
func (s *Store) CreateAlertClaim(ctx context.Context, id string, c *AlertClaim) (time.Time, error) {
	return s.createAt(ctx, ColAlertSent, id, c)
}

// GetAlertClaim reads an alert's claim.
func (s *Store) GetAlertClaim(ctx context.Context, id string) (*Versioned[AlertClaim], error) {
	return get[AlertClaim](ctx, s, ColAlertSent, id)
}

// UpdateAlertClaimIf changes an alert's claim if it is unchanged since updateTime.
func (s *Store) UpdateAlertClaimIf(ctx context.Context, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColAlertSent, id, updateTime, fields)
}

// CreateAlertThread claims the posting of a run's parent message in a channel; ErrExists
// means someone else claimed it (or posted it) first.
func (s *Store) CreateAlertThread(ctx context.Context, id string, t *AlertThread) (time.Time, error) {
	return s.createAt(ctx, ColAlertThreads, id, t)
}

// GetAlertThread reads a run's thread in a channel.
func (s *Store) GetAlertThread(ctx context.Context, id string) (*Versioned[AlertThread], error) {
	return get[AlertThread](ctx, s, ColAlertThreads, id)
}

// UpdateAlertThreadIf changes a thread if it is unchanged since updateTime.
func (s *Store) UpdateAlertThreadIf(ctx context.Context, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColAlertThreads, id, updateTime, fields)
}

// CreateDigestCursor creates a digest's cursor; ErrExists if it is there.
func (s *Store) CreateDigestCursor(ctx context.Context, id string, c *DigestCursor) (time.Time, error) {
	return s.createAt(ctx, ColAlertDigests, id, c)
}

// GetDigestCursor reads a digest's cursor.
func (s *Store) GetDigestCursor(ctx context.Context, id string) (*Versioned[DigestCursor], error) {
	return get[DigestCursor](ctx, s, ColAlertDigests, id)
}

// UpdateDigestCursorIf moves a digest's cursor if it is unchanged since updateTime.
func (s *Store) UpdateDigestCursorIf(ctx context.Context, id string, updateTime time.Time, fields map[string]any) (time.Time, error) {
	return s.updateIf(ctx, ColAlertDigests, id, updateTime, fields)
}

// FailedTaskInstances reads task instances that ended failed in [from, to), oldest first, at
// most limit: an indexed range over ended_at (composite index state + ended_at in infra/).
func (s *Store) FailedTaskInstances(ctx context.Context, from, to time.Time, limit int) ([]Versioned[scheduler.TaskInstance], error) {
	q := s.fs.Collection(ColTaskInstances).Where("state", "==", string(scheduler.TaskFailed)).
		Where("ended_at", ">=", from).Where("ended_at", "<", to).OrderBy("ended_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.TaskInstance](ctx, s, q, "failed task instances")
}

// SLADueRuns reads runs whose sla_due_at has passed, oldest first: a single-field range, so
// the alerts' tick reads the runs whose SLA is due and no others.
func (s *Store) SLADueRuns(ctx context.Context, now time.Time, limit int) ([]Versioned[scheduler.Run], error) {
	q := s.fs.Collection(ColRuns).Where("sla_due_at", "<=", now).OrderBy("sla_due_at", firestore.Asc).Limit(limit)
	return queryAll[scheduler.Run](ctx, s, q, "runs with an SLA due")
}
