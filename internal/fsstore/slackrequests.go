package fsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ColSlackRequests holds one claim per Slack request the Retry endpoint accepted, keyed by
// the request's signature: a replay of the same signed request finds the claim and is
// refused, by whichever instance of the endpoint it reaches. Firestore's TTL deletes the
// claims after expire_at (Slack's own rule refuses a request older than 5 minutes anyway).
const ColSlackRequests = "slack_requests"

// SlackRequest is the claim of one accepted Slack request.
type SlackRequest struct {
	ReceivedAt time.Time `firestore:"received_at" json:"received_at"`
	ExpireAt   time.Time `firestore:"expire_at" json:"-"`
}

// ClaimSlackRequest records a Slack request by its signature; ErrExists means it was already
// received (a replay).
func (s *Store) ClaimSlackRequest(ctx context.Context, signature string, receivedAt, expireAt time.Time) error {
	sum := sha256.Sum256([]byte(signature))
	id := hex.EncodeToString(sum[:])
	_, err := s.createAt(ctx, ColSlackRequests, id, &SlackRequest{ReceivedAt: receivedAt, ExpireAt: expireAt})
	return err
}
