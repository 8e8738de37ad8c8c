package slackactions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/slackapi"
)

// AuditAction is the action a Retry click is audited as.
const AuditAction = "task.retry"

// RetriedBlockID is the block_id of the context block that says who retried a message's
// task; a later retry replaces it.
const RetriedBlockID = "updraft_retried"

// maxBody bounds a request body. Slack's payload carries the whole message (up to 50
// blocks), well under this.
const maxBody = 1 << 20

// slackCallTimeout bounds one Web API call.
const slackCallTimeout = 30 * time.Second

// Config is what a Handler needs.
type Config struct {
	// SigningSecret is the Slack app's signing secret (Basic Information → App Credentials).
	SigningSecret string
	// BotToken is the app's bot token (xoxb-…), for users.info, chat.update and
	// chat.postEphemeral.
	BotToken string
	// APIURL is the Slack Web API's base URL: "" for Slack's own, the fake's URL locally
	// (UPDRAFT_SLACK_API_URL, with or without /api).
	APIURL string
	// Engine clears and re-dispatches tasks; its store gives the DAG's owner and timezone.
	Engine *engine.Engine
	// Access checks roles and keeps the audit log.
	Access *access.Service
	// Now is the clock (time.Now when nil); signatures' timestamps are checked against it.
	Now func() time.Time
	// Log receives one line per request refused and per click handled.
	Log *slog.Logger
	// WorkTimeout bounds the work done after a click is acknowledged (2 minutes when 0).
	WorkTimeout time.Duration
	// OnDone, when set, is called with each accepted click's outcome once its work is done.
	OnDone func(Outcome)
}

// Outcome is what became of one accepted click.
type Outcome struct {
	RetryValue
	// SlackUser is the clicking user's Slack id, and Who their email ("slack:U…" when
	// Slack gave none).
	SlackUser, Who string
	// Result is access.ResultOK, access.ResultRefused or access.ResultFailed.
	Result string
	// Detail says what was cleared, or why nothing was.
	Detail string
	// Cleared lists the task ids cleared (the task and its downstream).
	Cleared []string
}

// Handler serves POST /slack/actions. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	secret []byte
	slack  *slack.Client
	log    *slog.Logger
	wg     sync.WaitGroup
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.SigningSecret == "":
		return nil, errors.New("slackactions: no signing secret")
	case cfg.BotToken == "":
		return nil, errors.New("slackactions: no bot token")
	case cfg.Engine == nil || cfg.Access == nil:
		return nil, errors.New("slackactions: an engine and an access service are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = 2 * time.Minute
	}
	return &Handler{
		cfg: cfg, secret: []byte(cfg.SigningSecret), slack: slackapi.New(cfg.BotToken, cfg.APIURL, &http.Client{Timeout: slackCallTimeout}),
		log: cfg.Log,
	}, nil
}

// Wait blocks until the work of every click acknowledged so far is done: for tests, and
// for a clean shutdown.
func (h *Handler) Wait() { h.wg.Wait() }

// ServeHTTP verifies the request, answers 200 at once (Slack wants an answer within 3
// seconds) and does the work after. An unverified request gets 401, a malformed one 400;
// neither changes anything, and both are logged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "updraft: POST Slack's interactivity payload here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.log.Warn("refused a Slack action: unreadable body", "remote_addr", r.RemoteAddr, "error", err)
		http.Error(w, "updraft: request body unreadable or over 1 MiB", http.StatusRequestEntityTooLarge)
		return
	}
	ts, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature)
	now := h.cfg.Now()
	if err := Verify(h.secret, ts, sig, body, now); err != nil {
		h.log.Warn("refused an unverified Slack request; nothing was changed", "reason", err.Error(),
			"remote_addr", r.RemoteAddr, "slack_timestamp", ts)
		http.Error(w, "updraft: "+err.Error(), http.StatusUnauthorized)
		return
	}
	p, err := ParsePayload(body)
	var v RetryValue
	if err == nil && p.OnlyLinks() {
		// A link button (View log) opens in the browser; Slack still tells us about the
		// click, and anything but a 200 shows the user a warning.
		w.WriteHeader(http.StatusOK)
		return
	}
	if err == nil {
		v, err = p.Retry()
	}
	if err != nil {
		h.log.Warn("refused a malformed Slack action; nothing was changed", "reason", err.Error(), "remote_addr", r.RemoteAddr)
		http.Error(w, "updraft: "+err.Error(), http.StatusBadRequest)
		return
	}
	first, err := h.firstSight(r.Context(), sig, now)
	if err != nil {
		h.log.Error("could not record a Slack request; nothing was changed", "error", err.Error(),
			"remote_addr", r.RemoteAddr, "slack_user", p.User.ID)
		http.Error(w, "updraft: could not record the request; try again", http.StatusServiceUnavailable)
		return
	}
	if !first {
		h.log.Warn("refused a replayed Slack request; nothing was changed", "reason", ErrSeen.Error(),
			"remote_addr", r.RemoteAddr, "slack_user", p.User.ID, "dag_id", v.DagID, "run_id", v.RunID, "task_id", v.TaskID)
		http.Error(w, "updraft: "+ErrSeen.Error(), http.StatusUnauthorized)
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.WorkTimeout)
		defer cancel()
		out := h.retry(ctx, p, v)
		h.log.Info("slack retry", "result", out.Result, "dag_id", v.DagID, "run_id", v.RunID, "task_id", v.TaskID,
			"slack_user", out.SlackUser, "who", out.Who, "detail", out.Detail)
		if h.cfg.OnDone != nil {
			h.cfg.OnDone(out)
		}
	}()
	w.WriteHeader(http.StatusOK)
}

// firstSight claims a verified request's signature in Firestore and reports whether it is
// new: the same signed request sent again, to this instance or another, or after a restart,
// finds the claim and is a replay. The claim outlives the 5 minutes in which Verify accepts
// the request, and Firestore's TTL deletes it after that.
func (h *Handler) firstSight(ctx context.Context, sig string, now time.Time) (bool, error) {
	err := h.cfg.Engine.Store().ClaimSlackRequest(ctx, sig, now, now.Add(2*MaxAge))
	if errors.Is(err, fsstore.ErrExists) {
		return false, nil
	}
	return err == nil, err
}

// retry does a verified click's work: who it is, whether they may, the clear, the
// message, the audit.
func (h *Handler) retry(ctx context.Context, p *Payload, v RetryValue) Outcome {
	from := "slack:" + p.User.ID
	out := Outcome{RetryValue: v, SlackUser: p.User.ID, Who: from}
	finish := func(result, detail, tell string) Outcome {
		out.Result, out.Detail = result, detail
		if tell != "" {
			h.tell(ctx, p, tell)
		}
		err := h.cfg.Access.Record(ctx, access.Event{
			Actor: access.Actor{Who: out.Who, From: from}, Action: AuditAction,
			Target: access.Target{DagID: v.DagID, RunID: v.RunID, TaskID: v.TaskID}, Result: result, Detail: detail,
		})
		if err != nil {
			h.log.Error("could not audit a Slack retry", "dag_id", v.DagID, "run_id", v.RunID, "task_id", v.TaskID, "who", out.Who, "error", err)
		}
		return out
	}
	what := fmt.Sprintf("`%s` of `%s` (run `%s`)", v.TaskID, v.DagID, v.RunID)

	email, err := h.userEmail(ctx, p.User.ID)
	if err != nil {
		return finish(access.ResultRefused, err.Error(), fmt.Sprintf(
			":no_entry: Updraft did not retry %s: it could not read your email address from Slack, which it needs to check your role. Nothing was changed.", what))
	}
	out.Who = email
	d, err := h.cfg.Engine.Store().GetDAG(ctx, v.DagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return finish(access.ResultFailed, "DAG "+v.DagID+" is not deployed", fmt.Sprintf(
			":warning: Updraft did not retry %s: DAG `%s` is not deployed (any more). Nothing was changed.", what, v.DagID))
	}
	if err != nil {
		return finish(access.ResultFailed, "read DAG: "+err.Error(), fmt.Sprintf(
			":warning: Updraft did not retry %s: it could not read the DAG (%v). Nothing was changed; try again.", what, err))
	}
	err = h.cfg.Access.Authorize(ctx, email, d.Rec, access.Operator)
	var denied *access.DeniedError
	if errors.As(err, &denied) {
		denied.Action = AuditAction
		return finish(access.ResultRefused, denied.Error(), refusal(what, denied))
	}
	if err != nil {
		return finish(access.ResultFailed, "check role: "+err.Error(), fmt.Sprintf(
			":warning: Updraft did not retry %s: it could not check your role (%v). Nothing was changed; try again.", what, err))
	}
	cleared, err := h.cfg.Engine.ClearTasks(ctx, v.DagID, v.RunID, []string{v.TaskID}, true, false)
	out.Cleared = cleared
	if err != nil {
		return finish(access.ResultFailed, "clear: "+err.Error(), fmt.Sprintf(":warning: Updraft could not retry %s: %v", what, err))
	}
	detail := "cleared " + strings.Join(cleared, ", ")
	if len(cleared) == 0 {
		detail = "nothing to clear: the task had not run yet"
	}
	if err := h.markRetried(ctx, p, d.Rec.Timezone); err != nil {
		h.log.Warn("retried, but could not update the Slack message", "dag_id", v.DagID, "run_id", v.RunID, "task_id", v.TaskID, "error", err)
		detail += "; the message was not updated: " + err.Error()
	}
	return finish(access.ResultOK, detail, "")
}

// refusal is what a user who lacks the role is told.
func refusal(what string, d *access.DeniedError) string {
	held := "you (" + d.Email + ") hold no role"
	if d.Held != access.None {
		held = "you (" + d.Email + ") hold only *" + d.Held.String() + "*"
	}
	msg := fmt.Sprintf(":no_entry: You can't retry %s: retrying needs the *%s* role on DAG `%s`, and %s. Nothing was changed.\n"+
		"An Updraft admin can grant it with `updraft users grant %s %s`", what, d.Need, d.DagID, held, d.Email, d.Need)
	if d.Owner != "" {
		msg += fmt.Sprintf("; the DAG's owner, %s, can retry it as well", d.Owner)
	}
	return msg + "."
}

// userEmail maps a Slack user to an email (users.info; needs the users:read.email scope).
func (h *Handler) userEmail(ctx context.Context, userID string) (string, error) {
	u, err := h.slack.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("users.info %s: %w", userID, err)
	}
	if u.Profile.Email == "" {
		return "", fmt.Errorf("users.info %s gave no email: the Slack app needs the users:read.email scope", userID)
	}
	email, err := access.NormalizeEmail(u.Profile.Email)
	if err != nil {
		return "", fmt.Errorf("users.info %s: %w", userID, err)
	}
	return email, nil
}

// tell shows the clicking user a message only they see, in the message's channel. It is
// best effort: a failure is logged.
func (h *Handler) tell(ctx context.Context, p *Payload, text string) {
	ch := p.ChannelID()
	if ch == "" {
		h.log.Warn("could not tell a Slack user why nothing was done: the payload names no channel", "slack_user", p.User.ID)
		return
	}
	if _, err := h.slack.PostEphemeralContext(ctx, ch, p.User.ID, slack.MsgOptionText(text, false)); err != nil {
		h.log.Warn("could not tell a Slack user why nothing was done", "slack_user", p.User.ID, "channel", ch, "error", err)
	}
}

// markRetried updates the clicked message: its blocks as they were, with a context block
// saying who retried it and when, in the DAG's timezone. Attachments left out of
// chat.update keep their value.
func (h *Handler) markRetried(ctx context.Context, p *Payload, tz string) error {
	if p.Message == nil || p.Message.TS == "" || p.Container.IsEphemeral {
		return errors.New("the payload carries no message to update")
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	blocks, err := RetriedBlocks(p.Message.Blocks, p.User.ID, h.cfg.Now().In(loc))
	if err != nil {
		return err
	}
	_, _, _, err = h.slack.UpdateMessageContext(ctx, p.ChannelID(), p.Message.TS,
		slack.MsgOptionText(p.Message.Text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		return fmt.Errorf("chat.update %s %s: %w", p.ChannelID(), p.Message.TS, err)
	}
	return nil
}

// RetriedBlocks returns a message's blocks, kept exactly as they are, with a context block
// (block_id RetriedBlockID) "Retried by <@USER> at TIME" at the end, replacing an earlier
// one.
func RetriedBlocks(orig []json.RawMessage, userID string, at time.Time) ([]slack.Block, error) {
	out := make([]slack.Block, 0, len(orig)+1)
	for i, raw := range orig {
		b, err := slack.BlockFromJSON(string(raw))
		if err != nil {
			return nil, fmt.Errorf("the message's block %d: %w", i, err)
		}
		if b.ID() == RetriedBlockID {
			continue
		}
		out = append(out, b)
	}
	ctxBlock, err := json.Marshal(map[string]any{
		"type": "context", "block_id": RetriedBlockID,
		"elements": []any{map[string]any{"type": "mrkdwn",
			"text": fmt.Sprintf(":repeat: Retried by <@%s> at %s", userID, at.Format("2006-01-02 15:04:05 MST"))}},
	})
	if err != nil {
		return nil, err
	}
	b, err := slack.BlockFromJSON(string(ctxBlock))
	if err != nil {
		return nil, err
	}
	return append(out, b), nil
}
