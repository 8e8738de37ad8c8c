package slackactions

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxAge is how far a request's timestamp may be from now, either way: an older request is
// a replay (Slack's own rule), a newer one a forgery or a clock far off.
const MaxAge = 5 * time.Minute

// Headers Slack signs its requests with.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// Why a request is not verified. Each is answered 401 and changes nothing.
var (
	ErrNotSigned    = errors.New("the request is not signed by Slack (no X-Slack-Signature or X-Slack-Request-Timestamp header)")
	ErrBadSignature = errors.New("the request's Slack signature does not match (wrong signing secret, or the body was altered)")
	ErrReplayed     = errors.New("the request's timestamp is more than 5 minutes old: a replayed request")
	ErrFuture       = errors.New("the request's timestamp is more than 5 minutes in the future")
	ErrSeen         = errors.New("the request was already received: a replayed request")
)

// Sign returns Slack's signature of a request: "v0=" + hex(HMAC-SHA256(secret,
// "v0:" + timestamp + ":" + body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("v0:" + timestamp + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature (in constant time) and that its timestamp (Unix
// seconds) is within MaxAge of now. The error is one of this package's Err values, wrapped
// with detail that never includes the secret.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	if timestamp == "" || signature == "" {
		return ErrNotSigned
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrBadSignature, timestamp)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return ErrBadSignature
	}
	age := now.Sub(time.Unix(secs, 0))
	switch {
	case age > MaxAge:
		return fmt.Errorf("%w (signed %s ago)", ErrReplayed, age.Truncate(time.Second))
	case age < -MaxAge:
		return fmt.Errorf("%w (%s ahead)", ErrFuture, (-age).Truncate(time.Second))
	}
	return nil
}
