package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/internal/slackapi"
)

// Environment variables ConfigFromEnv reads.
const (
	// EnvUIURL is the UI's base URL for the View log and run links.
	EnvUIURL = "UPDRAFT_UI_URL"
	// EnvSlackAPIURL points slack-go at another Slack Web API (the local fake); the same
	// variable as the slack.post task type's.
	EnvSlackAPIURL = slackapi.EnvAPIURL
	// EnvDigestChannel is the digest's channel (unset: no digest).
	EnvDigestChannel = "UPDRAFT_ALERT_DIGEST_CHANNEL"
	// EnvDigestEvery is the digest's period, a Go duration (default 10m).
	EnvDigestEvery = "UPDRAFT_ALERT_DIGEST_EVERY"
	// EnvDigestConnection is the Slack connection the digest posts with (default slack).
	EnvDigestConnection = "UPDRAFT_ALERT_DIGEST_CONNECTION"
)

// Defaults.
const (
	DefaultUIURL       = "http://localhost:8080"
	DefaultConnection  = "slack"
	DefaultDigestEvery = 10 * time.Minute
)

// Config tunes the alerter. Zero fields take the defaults.
type Config struct {
	// UIURL is the UI's base URL (default http://localhost:8080).
	UIURL string
	// SlackAPIURL is the Slack Web API's base URL ("": Slack's own), e.g. the fake's URL.
	SlackAPIURL string
	// DigestChannel is where the failure digest goes ("": no digest).
	DigestChannel string
	// DigestEvery is the digest's period (default 10 minutes).
	DigestEvery time.Duration
	// DigestConnection is the Slack connection of the digest (default "slack").
	DigestConnection string

	// ClaimTTL is how long a pending claim (an alert, or a run's parent message) is left to
	// its holder before a later delivery may take it over (default 2 minutes). A holder
	// starts no Slack call that could end after it.
	ClaimTTL time.Duration
	// CallTimeout bounds one Slack call (default 10 s).
	CallTimeout time.Duration
	// MaxTries bounds the tries of one Slack call (default 5).
	MaxTries int
	// Backoff is the first wait between tries, doubled each time (default 1 s).
	Backoff time.Duration
	// MaxRetryAfter is the longest Retry-After of a 429 that is waited out (default 30 s);
	// a longer one gives up at once.
	MaxRetryAfter time.Duration
	// OwnerTTL and OwnerMissTTL are how long a users.lookupByEmail hit and miss are cached
	// (default 1 hour and 10 minutes).
	OwnerTTL, OwnerMissTTL time.Duration
	// TokenTTL is how long a connection's bot token is cached (default 5 minutes).
	TokenTTL time.Duration
	// Retention is how long alert state is kept before Firestore's TTL deletes it
	// (default 90 days, as runs).
	Retention time.Duration
	// TickBatch bounds the runs with an SLA due read per tick, and the failures a digest
	// lists (default 200).
	TickBatch int
	// PollEvery is how often a delivery re-reads a thread whose parent someone else is
	// posting (default 200 ms).
	PollEvery time.Duration

	// Now is the clock (default time.Now); Sleep waits (default: a timer, or ctx's end).
	// Tests inject both, so retries and Retry-After waits cost no real time.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c Config) withDefaults() Config {
	if c.UIURL == "" {
		c.UIURL = DefaultUIURL
	}
	c.UIURL = strings.TrimRight(c.UIURL, "/")
	if c.DigestEvery <= 0 {
		c.DigestEvery = DefaultDigestEvery
	}
	if c.DigestConnection == "" {
		c.DigestConnection = DefaultConnection
	}
	if c.ClaimTTL <= 0 {
		c.ClaimTTL = 2 * time.Minute
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.MaxTries <= 0 {
		c.MaxTries = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 30 * time.Second
	}
	if c.OwnerTTL <= 0 {
		c.OwnerTTL = time.Hour
	}
	if c.OwnerMissTTL <= 0 {
		c.OwnerMissTTL = 10 * time.Minute
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 5 * time.Minute
	}
	if c.Retention <= 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.TickBatch <= 0 {
		c.TickBatch = 200
	}
	if c.PollEvery <= 0 {
		c.PollEvery = 200 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ConfigFromEnv reads UPDRAFT_UI_URL, UPDRAFT_SLACK_API_URL, UPDRAFT_ALERT_DIGEST_CHANNEL,
// UPDRAFT_ALERT_DIGEST_EVERY and UPDRAFT_ALERT_DIGEST_CONNECTION. Unset variables keep the
// defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		UIURL: getenv(EnvUIURL), SlackAPIURL: getenv(EnvSlackAPIURL),
		DigestChannel: strings.TrimSpace(getenv(EnvDigestChannel)), DigestConnection: getenv(EnvDigestConnection),
	}
	if v := getenv(EnvDigestEvery); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("%s=%q is not a positive duration like 10m", EnvDigestEvery, v)
		}
		c.DigestEvery = d
	}
	return c, nil
}
