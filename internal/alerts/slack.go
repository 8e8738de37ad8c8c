package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/internal/slackapi"
)

// Tokens returns the Slack bot token of a connection: the password of connection ID, kept in
// the secret updraft-connections-ID.
type Tokens func(ctx context.Context, connection string) (string, error)

// errNoBudget means a Slack call was not (re)tried because it could not end within its
// claim's bound.
var errNoBudget = errors.New("alerts: no time left within the claim's bound")

// slackClient is one connection's Slack client, with the alerter's retry policy.
type slackClient struct {
	a    *Alerter
	conn string
	api  *slack.Client
}

// client returns the Slack client of a connection.
func (a *Alerter) client(ctx context.Context, conn string) (*slackClient, error) {
	if conn == "" {
		conn = DefaultConnection
	}
	token, err := a.token(ctx, conn)
	if err != nil {
		return nil, err
	}
	return &slackClient{a: a, conn: conn, api: slackapi.New(token, a.cfg.SlackAPIURL, a.http)}, nil
}

type cachedToken struct {
	token string
	until time.Time
}

func (a *Alerter) token(ctx context.Context, conn string) (string, error) {
	now := a.cfg.Now()
	a.mu.Lock()
	t, ok := a.tokens[conn]
	a.mu.Unlock()
	if ok && now.Before(t.until) {
		return t.token, nil
	}
	if a.getToken == nil {
		return "", fmt.Errorf("alerts: no Secret Manager here to read the bot token of connection %q", conn)
	}
	tok, err := a.getToken(ctx, conn)
	if err != nil {
		return "", fmt.Errorf("alerts: bot token of connection %q (secret updraft-connections-%s): %w", conn, conn, err)
	}
	if tok == "" {
		return "", fmt.Errorf("alerts: connection %q has no password: put the bot token (xoxb-…) there", conn)
	}
	a.mu.Lock()
	a.tokens[conn] = cachedToken{token: tok, until: now.Add(a.cfg.TokenTTL)}
	a.mu.Unlock()
	return tok, nil
}

// post posts a message (a reply when threadTS is set) and returns the channel id and ts.
func (c *slackClient) post(ctx context.Context, deadline time.Time, channel, threadTS string, m Message) (chID, ts string, err error) {
	opts := m.options()
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	err = c.a.retry(ctx, deadline, "chat.postMessage "+channel, func(ctx context.Context) error {
		var err error
		chID, ts, err = c.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return chID, ts, err
}

// update replaces a message's text and attachment.
func (c *slackClient) update(ctx context.Context, deadline time.Time, chID, ts string, m Message) error {
	return c.a.retry(ctx, deadline, "chat.update "+chID, func(ctx context.Context) error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, chID, ts, m.options()...)
		return err
	})
}

// retry calls f until it succeeds, fails for good, or the tries or the time until deadline
// (zero: none) run out. A 429 waits its Retry-After (bounded by MaxRetryAfter); other
// transient failures back off exponentially from Backoff. No call starts that could end
// after deadline.
func (a *Alerter) retry(ctx context.Context, deadline time.Time, what string, f func(ctx context.Context) error) error {
	wait := a.cfg.Backoff
	var last error
	for try := 1; ; try++ {
		if !deadline.IsZero() && a.cfg.Now().Add(a.cfg.CallTimeout).After(deadline) {
			if last == nil {
				return fmt.Errorf("alerts: %s: %w", what, errNoBudget)
			}
			return fmt.Errorf("alerts: %s: gave up after %d tries (%w): %w", what, try-1, errNoBudget, last)
		}
		cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		err := f(cctx)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		pause, retryable := a.retryAfter(err, wait)
		if !retryable || ctx.Err() != nil {
			return fmt.Errorf("alerts: %s: %w", what, err)
		}
		if try >= a.cfg.MaxTries {
			return fmt.Errorf("alerts: %s: gave up after %d tries: %w", what, try, err)
		}
		if !deadline.IsZero() && a.cfg.Now().Add(pause+a.cfg.CallTimeout).After(deadline) {
			return fmt.Errorf("alerts: %s: gave up after %d tries (%w): %w", what, try, errNoBudget, err)
		}
		a.Stats.Retries.Add(1)
		if err := a.cfg.Sleep(ctx, pause); err != nil {
			return fmt.Errorf("alerts: %s: %w (after: %w)", what, err, last)
		}
		wait *= 2
	}
}

// retryAfter says whether err is worth another try, and after how long.
func (a *Alerter) retryAfter(err error, backoff time.Duration) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var api slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		if rl.RetryAfter > a.cfg.MaxRetryAfter {
			return 0, false
		}
		return max(rl.RetryAfter, time.Second), true
	case errors.As(err, &sc):
		return backoff, sc.Retryable()
	case errors.As(err, &api):
		switch api.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return backoff, true
		}
		return 0, false
	}
	// Transport errors and timeouts: Slack unreachable for now.
	return backoff, true
}

// owners caches users.lookupByEmail, hits and misses, per connection.
type owners struct {
	mu sync.Mutex
	m  map[string]ownerEntry
}

type ownerEntry struct {
	mention string // "<@U…>", or "" for a miss
	until   time.Time
}

// owner returns how to name a DAG owner: a mention of their Slack user, or the email when
// Slack does not know it (or can't be asked now; that is not cached).
func (c *slackClient) owner(ctx context.Context, email string) string {
	if email == "" {
		return "(no owner)"
	}
	a := c.a
	key := c.conn + "\x00" + email
	now := a.cfg.Now()
	a.owners.mu.Lock()
	e, ok := a.owners.m[key]
	a.owners.mu.Unlock()
	if ok && now.Before(e.until) {
		a.Stats.OwnerCacheHits.Add(1)
		if e.mention == "" {
			return email
		}
		return e.mention
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	u, err := c.api.GetUserByEmailContext(cctx, email)
	cancel()
	var api slack.SlackErrorResponse
	switch {
	case err == nil && u.ID != "":
		e = ownerEntry{mention: "<@" + u.ID + ">", until: now.Add(a.cfg.OwnerTTL)}
	case errors.As(err, &api) && api.Err == "users_not_found":
		e = ownerEntry{until: now.Add(a.cfg.OwnerMissTTL)}
	default:
		a.log.Warn("alerts: owner lookup failed; naming them by email", "email", email, "error", err)
		return email
	}
	a.owners.mu.Lock()
	a.owners.m[key] = e
	a.owners.mu.Unlock()
	if e.mention == "" {
		return email
	}
	return e.mention
}

func newHTTPClient(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }
