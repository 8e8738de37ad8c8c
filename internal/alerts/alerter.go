package alerts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/render"
	"github.com/updraft-dev/updraft/scheduler"
)

// Specs is what the alerter needs of the engine: a run's DAG version, and variables for the
// channel template. *engine.Engine is one.
type Specs interface {
	Spec(ctx context.Context, dagID, version string) (*dag.DAG, error)
	Variable(ctx context.Context, name string) (value string, ok bool, err error)
}

// Alerter posts alerts to Slack from task events (HandleEvent) and from the tick (Tick). It
// is safe for concurrent use, by any number of processes.
type Alerter struct {
	store    *fsstore.Store
	specs    Specs
	getToken Tokens
	cfg      Config
	log      *slog.Logger
	http     *http.Client

	mu     sync.Mutex
	tokens map[string]cachedToken
	owners owners

	// Stats counts what the alerter did, for /metrics and tests.
	Stats Stats
}

// Stats are the alerter's counters.
type Stats struct {
	// Posted counts messages posted (parents, replies and digests); Updated, parent updates.
	Posted, Updated atomic.Int64
	// Failed counts alerts given up on (logged); Duplicates, alerts someone else had claimed.
	Failed, Duplicates atomic.Int64
	// Retries counts Slack calls tried again; OwnerCacheHits, owners named from the cache.
	Retries, OwnerCacheHits atomic.Int64
}

// New returns an alerter. tokens reads a connection's bot token (nil: none can be read, so
// every alert fails and is logged). log may be nil (slog.Default).
func New(store *fsstore.Store, specs Specs, tokens Tokens, cfg Config, log *slog.Logger) *Alerter {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	return &Alerter{
		store: store, specs: specs, getToken: tokens, cfg: cfg, log: log, http: newHTTPClient(cfg.CallTimeout),
		tokens: map[string]cachedToken{}, owners: owners{m: map[string]ownerEntry{}},
	}
}

// Config returns the alerter's settings, defaults applied.
func (a *Alerter) Config() Config { return a.cfg }

// eventKind maps a task event's state to the alert it may give.
func eventKind(s scheduler.TaskState) (Kind, bool) {
	switch s {
	case scheduler.TaskFailed:
		return KindFailure, true
	case scheduler.TaskUpForRetry:
		return KindRetry, true
	case scheduler.TaskSuccess:
		return KindSuccess, true
	}
	return "", false
}

// HandleEvent handles one task event (the events topic's message): the task's alert, if
// its alerts ask for it, and the run's, when the event finished the run. It returns an error
// only when the store failed (redeliver); Slack failures are retried, then logged, never
// returned, so Slack can't hold a message or fail anything. A malformed event or one of an
// unknown run gives an error wrapping scheduler.ErrBadMessage (acknowledge and drop).
func (a *Alerter) HandleEvent(ctx context.Context, data []byte) error {
	ev, err := scheduler.DecodeTaskEvent(data)
	if err != nil {
		return err
	}
	kind, alerting := eventKind(ev.State)
	if !alerting && !ev.State.Finished() {
		return nil // queued, running, up_for_reschedule: nothing to say
	}
	if ev.Version != "" {
		// The event names the run's DAG version: a DAG without alerts costs no read of the run.
		if spec, err := a.specs.Spec(ctx, ev.DagID, ev.Version); err == nil && !anyAlerts(spec) {
			return nil
		}
	}
	rv, err := a.store.GetRun(ctx, ev.DagID, ev.RunID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return fmt.Errorf("%w: alerts: event of unknown run %s/%s", scheduler.ErrBadMessage, ev.DagID, ev.RunID)
	}
	if err != nil {
		return fmt.Errorf("alerts: event of %s/%s: %w", ev.DagID, ev.RunID, err)
	}
	run := rv.Rec
	spec, err := a.specs.Spec(ctx, run.DagID, run.Version)
	if err != nil {
		return fmt.Errorf("alerts: event of %s/%s: %w", ev.DagID, ev.RunID, err)
	}
	if !anyAlerts(spec) {
		return nil
	}
	var errs []error
	failureIn := "" // the channel this event's failure alert goes to
	if alerting {
		if cfg, scope := taskAlerts(spec, ev.TaskID); cfg != nil && wants(cfg, kind, scope) {
			alert, err := a.taskAlert(ctx, ev, kind, &run, spec)
			if err != nil {
				return err
			}
			key := "ev~" + ev.AttemptID + "~" + string(kind)
			if ev.AttemptID == "" {
				key = fmt.Sprintf("ev~%s~%d~%s", scheduler.TaskKey(ev.DagID, ev.RunID, ev.TaskID), ev.TryNumber, kind)
			}
			ch, err := a.channel(ctx, spec, &run, ev.TaskID, cfg.Channel)
			if err != nil {
				a.giveUp(err, "dag_id", ev.DagID, "run_id", ev.RunID, "task_id", ev.TaskID, "kind", kind)
			} else {
				if kind == KindFailure {
					failureIn = ch
				}
				errs = append(errs, a.deliver(ctx, delivery{key: key, conn: cfg.Connection, channel: ch, run: run, spec: spec, alert: alert}))
			}
		}
	}
	if run.State.Finished() {
		errs = append(errs, a.runFinished(ctx, &run, spec, ev.TaskID, failureIn))
	}
	return errors.Join(errs...)
}

// runFinished posts the run's own outcome when the DAG's alerts ask for it, and otherwise
// updates the parents of the run's threads with its final state.
func (a *Alerter) runFinished(ctx context.Context, run *scheduler.Run, spec *dag.DAG, taskID, failureIn string) error {
	ended := int64(0)
	if run.EndedAt != nil {
		ended = run.EndedAt.UnixNano()
	}
	kind, event := KindRunSuccess, "success"
	if run.State == scheduler.RunFailed {
		kind, event = KindRunFailed, "failure"
	}
	alert := Alert{Kind: kind, DagID: run.DagID, RunID: run.RunID, LogicalDate: run.LogicalDate, Loc: spec.Location(),
		Started: run.StartedAt, Ended: run.EndedAt, UIURL: a.cfg.UIURL}
	var errs []error
	refreshed := map[string]bool{}
	if cfg := dagAlerts(spec); cfg != nil {
		ch, err := a.channel(ctx, spec, run, "", cfg.Channel)
		switch {
		case err != nil:
			a.giveUp(err, "dag_id", run.DagID, "run_id", run.RunID, "kind", kind)
		case failureIn == ch:
			// This event's failure alert, in this channel, already shows the run failed.
		case slices.Contains(cfg.On, event):
			// A failed run's thread already holds its task's failure: the parent update says
			// the run failed. A success is news: a reply says so.
			key := fmt.Sprintf("run~%s~%s~%d", run.Key(), kind, ended)
			errs = append(errs, a.deliver(ctx, delivery{key: key, conn: cfg.Connection, channel: ch, run: *run, spec: spec, alert: alert,
				quiet: kind == KindRunFailed}))
			refreshed[ch] = true
		default:
			key := fmt.Sprintf("run~%s~refresh~%s~%d", run.Key(), run.State, ended)
			errs = append(errs, a.deliver(ctx, delivery{key: key, conn: cfg.Connection, channel: ch, run: *run, spec: spec, alert: alert, refresh: true}))
			refreshed[ch] = true
		}
	}
	// The task's own channel, when its alerts override the DAG's.
	if cfg, scope := taskAlerts(spec, taskID); cfg != nil && scope == scopeTask {
		if ch, err := a.channel(ctx, spec, run, taskID, cfg.Channel); err == nil && !refreshed[ch] && ch != failureIn {
			key := fmt.Sprintf("run~%s~refresh~%s~%d", run.Key(), run.State, ended)
			errs = append(errs, a.deliver(ctx, delivery{key: key, conn: cfg.Connection, channel: ch, run: *run, spec: spec, alert: alert, refresh: true}))
		}
	}
	return errors.Join(errs...)
}

// scope says where an alerts block comes from.
type scope int

const (
	scopeDAG scope = iota
	scopeTask
)

// anyAlerts reports whether the DAG or any task has Slack alerts.
func anyAlerts(d *dag.DAG) bool {
	if dagAlerts(d) != nil {
		return true
	}
	for i := range d.Tasks {
		if t := d.Tasks[i].Alerts; t != nil && t.Slack != nil {
			return true
		}
	}
	return false
}

func dagAlerts(d *dag.DAG) *dag.SlackAlert {
	if d.Alerts == nil {
		return nil
	}
	return d.Alerts.Slack
}

// taskAlerts returns the alerts that apply to a task: its own block, which overrides the
// DAG's for it (an alerts block without slack silences it), else the DAG's.
func taskAlerts(d *dag.DAG, taskID string) (*dag.SlackAlert, scope) {
	base, _, _ := strings.Cut(taskID, "[") // for_each instances: id[0], id[1], …
	if t, ok := d.Task(base); ok && t.Alerts != nil {
		return t.Alerts.Slack, scopeTask
	}
	return dagAlerts(d), scopeDAG
}

// wants reports whether an alerts block asks for a task's alert of this kind. At DAG level,
// success means the run's success (one message per run), not each task's.
func wants(cfg *dag.SlackAlert, k Kind, s scope) bool {
	if k == KindSuccess && s == scopeDAG {
		return false
	}
	return slices.Contains(cfg.On, string(k))
}

// taskAlert reads what a task event's alert says: the try's error and times (its attempt)
// and the retry budget (its task instance).
func (a *Alerter) taskAlert(ctx context.Context, ev scheduler.TaskEvent, kind Kind, run *scheduler.Run, spec *dag.DAG) (Alert, error) {
	al := Alert{Kind: kind, DagID: ev.DagID, RunID: ev.RunID, TaskID: ev.TaskID, TryNumber: ev.TryNumber,
		LogicalDate: run.LogicalDate, Loc: spec.Location(), UIURL: a.cfg.UIURL}
	ti, err := a.store.GetTaskInstance(ctx, ev.DagID, ev.RunID, ev.TaskID)
	switch {
	case err == nil:
		al.MaxTries = ti.Rec.TryBase + ti.Rec.MaxTries
		if ti.Rec.AttemptID == ev.AttemptID {
			al.Error, al.Started, al.Ended = ti.Rec.Error, ti.Rec.StartedAt, ti.Rec.EndedAt
		}
		// The attempts live on their instance: the event's one, if it is there.
		for _, at := range fsstore.AttemptsOf(ti) {
			if ev.AttemptID != "" && at.Rec.ID == ev.AttemptID {
				al.Error, al.Started, al.Ended = at.Rec.Error, &at.Rec.StartedAt, at.Rec.EndedAt
			}
		}
	case !errors.Is(err, fsstore.ErrNotFound):
		return al, fmt.Errorf("alerts: task %s of %s/%s: %w", ev.TaskID, ev.DagID, ev.RunID, err)
	}
	return al, nil
}

// channel renders an alerts block's channel for a run (and task): a template with the run's
// context and the `var` function.
func (a *Alerter) channel(ctx context.Context, d *dag.DAG, run *scheduler.Run, taskID, tmpl string) (string, error) {
	out := tmpl
	if strings.Contains(tmpl, "{{") {
		params := map[string]any{}
		for k, v := range d.Params {
			params[k] = v
		}
		var conf map[string]any
		if run.Conf != "" {
			if err := json.Unmarshal([]byte(run.Conf), &conf); err != nil {
				return "", fmt.Errorf("alerts: channel of %s: the run's conf is not a JSON object: %w", d.ID, err)
			}
		}
		for k, v := range conf {
			params[k] = v
		}
		data := render.Data(render.Run{DagID: d.ID, RunID: run.RunID, RunType: string(run.RunType), TaskID: taskID, Owner: d.Owner,
			Loc: d.Location(), LogicalDate: run.LogicalDate, IntervalStart: run.IntervalStart, IntervalEnd: run.IntervalEnd,
			Params: params, Conf: conf})
		funcs := render.Funcs(render.Lookups{Var: func(name string) (string, bool, error) { return a.specs.Variable(ctx, name) }}, d.Location())
		v, err := render.Render(tmpl, data, funcs)
		if err != nil {
			return "", fmt.Errorf("alerts: channel %q of %s: %w", tmpl, d.ID, err)
		}
		out, _ = v.(string)
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return "", fmt.Errorf("alerts: channel %q of %s is empty after rendering", tmpl, d.ID)
	}
	return out, nil
}

// delivery is one alert to one channel.
type delivery struct {
	key     string // what is alerted (event, run outcome, SLA), without the channel
	conn    string
	channel string
	run     scheduler.Run
	spec    *dag.DAG
	alert   Alert
	// refresh only updates the run's parent, if it has one: nothing is posted.
	refresh bool
	// quiet posts the parent when the run has none in the channel, else only updates it.
	quiet bool
}

// slackFailure marks an error of Slack (or of its token): the alert is given up on and
// logged, never redelivered.
type slackFailure struct{ err error }

func (e *slackFailure) Error() string { return e.err.Error() }
func (e *slackFailure) Unwrap() error { return e.err }

// held is a claim this delivery holds.
type held struct {
	id        string
	ut        time.Time // the claim's update time, for the conditional writes that close it
	claimedAt time.Time
}

// deadline is when this holder stops starting Slack calls: three quarters into the claim's
// bound, so a call never ends after someone may take the claim over.
func (a *Alerter) deadline(claimedAt time.Time) time.Time {
	return claimedAt.Add(a.cfg.ClaimTTL * 3 / 4)
}

// deliver claims an alert and posts it: the run's parent when the run has no thread in the
// channel yet, else a reply in its thread and an update of the parent.
func (a *Alerter) deliver(ctx context.Context, d delivery) error {
	h, err := a.claimAlert(ctx, claimID(d.key, d.channel), d)
	if err != nil || h == nil {
		return err
	}
	ts, err := a.post(ctx, d, h)
	now := a.cfg.Now()
	var sf *slackFailure
	switch {
	case err == nil:
		if _, err := a.store.UpdateAlertClaimIf(ctx, h.id, h.ut, map[string]any{"state": fsstore.AlertSent, "ts": ts, "updated_at": now}); err != nil {
			a.log.Warn("alerts: alert posted; could not record it", "claim", h.id, "error", err)
		}
		return nil
	case errors.As(err, &sf):
		a.giveUp(err, "dag_id", d.run.DagID, "run_id", d.run.RunID, "task_id", d.alert.TaskID, "kind", d.alert.Kind, "channel", d.channel)
		if _, uerr := a.store.UpdateAlertClaimIf(ctx, h.id, h.ut, map[string]any{"state": fsstore.AlertFailed, "error": err.Error(), "updated_at": now}); uerr != nil {
			a.log.Warn("alerts: could not record a failed alert", "claim", h.id, "error", uerr)
		}
		return nil
	}
	// The store failed: release the claim so the redelivery of this event can take it.
	if _, uerr := a.store.UpdateAlertClaimIf(ctx, h.id, h.ut, map[string]any{"claimed_at": time.Time{}, "updated_at": now}); uerr != nil {
		a.log.Warn("alerts: could not release a claim; it is taken over after its bound", "claim", h.id, "error", uerr)
	}
	return err
}

// giveUp logs an alert that will not be posted.
func (a *Alerter) giveUp(err error, attrs ...any) {
	a.Stats.Failed.Add(1)
	a.log.Error("alert failed: not posted", append(attrs, "error", err)...)
}

// claimAlert creates the alert's claim. It returns nil (and no error) when the alert is
// someone else's: posted, given up on, or pending and still within its bound.
func (a *Alerter) claimAlert(ctx context.Context, id string, d delivery) (*held, error) {
	now := a.cfg.Now()
	holder := newHolder()
	ut, err := a.store.CreateAlertClaim(ctx, id, &fsstore.AlertClaim{
		DagID: d.run.DagID, RunID: d.run.RunID, Kind: string(d.alert.Kind), Channel: d.channel, State: fsstore.AlertPending,
		Claim: holder, ClaimedAt: now, UpdatedAt: now, ExpireAt: now.Add(a.cfg.Retention),
	})
	if err == nil {
		return &held{id: id, ut: ut, claimedAt: now}, nil
	}
	if !errors.Is(err, fsstore.ErrExists) {
		return nil, fmt.Errorf("alerts: claim %s: %w", id, err)
	}
	v, err := a.store.GetAlertClaim(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("alerts: claim %s: %w", id, err)
	}
	if v.Rec.State != fsstore.AlertPending || now.Sub(v.Rec.ClaimedAt) < a.cfg.ClaimTTL {
		a.Stats.Duplicates.Add(1)
		return nil, nil
	}
	ut, err = a.store.UpdateAlertClaimIf(ctx, id, v.UpdateTime, map[string]any{"claim": holder, "claimed_at": now, "updated_at": now})
	if errors.Is(err, fsstore.ErrConflict) {
		a.Stats.Duplicates.Add(1)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerts: take over claim %s: %w", id, err)
	}
	a.log.Warn("alerts: took over an alert left pending by a delivery that did not finish", "claim", id)
	return &held{id: id, ut: ut, claimedAt: now}, nil
}

// post does a claimed delivery's Slack calls and returns the ts of what it posted.
func (a *Alerter) post(ctx context.Context, d delivery, h *held) (string, error) {
	c, err := a.client(ctx, d.conn)
	if err != nil {
		return "", &slackFailure{err}
	}
	d.alert.Owner = c.owner(ctx, d.spec.Owner)
	deadline := a.deadline(h.claimedAt)
	th, posted, err := a.thread(ctx, c, d, deadline)
	if err != nil || posted {
		return th.TS, err
	}
	if th.TS == "" { // a refresh of a run without a thread here: nothing to do
		return "", nil
	}
	ts := ""
	if !d.refresh && !d.quiet {
		if _, ts, err = c.post(ctx, deadline, th.ChannelID, th.TS, EventMessage(d.alert)); err != nil {
			return "", &slackFailure{err}
		}
		a.Stats.Posted.Add(1)
	}
	first := d.alert
	if th.Parent != "" {
		if err := json.Unmarshal([]byte(th.Parent), &first); err != nil {
			first = d.alert
		}
		first.Owner, first.UIURL, first.Loc = d.alert.Owner, a.cfg.UIURL, d.alert.Loc
	}
	if err := c.update(ctx, deadline, th.ChannelID, th.TS, ParentMessage(a.runInfo(&d.run, d.spec, d.alert.Owner), first, d.alert)); err != nil {
		if d.refresh || d.quiet {
			return "", &slackFailure{err}
		}
		a.log.Warn("alerts: reply posted; the parent message could not be updated", "dag_id", d.run.DagID, "run_id", d.run.RunID, "error", err)
		return ts, nil
	}
	a.Stats.Updated.Add(1)
	return ts, nil
}

func (a *Alerter) runInfo(run *scheduler.Run, spec *dag.DAG, owner string) RunInfo {
	return RunInfo{DagID: run.DagID, RunID: run.RunID, State: run.State, LogicalDate: run.LogicalDate, Loc: spec.Location(),
		Started: run.StartedAt, Ended: run.EndedAt, Now: a.cfg.Now(), Owner: owner, UIURL: a.cfg.UIURL}
}

// thread returns the run's thread in the delivery's channel. When there is none, it posts the
// parent (with this alert) and reports posted; a refresh returns an empty thread instead.
// When someone else is posting the parent, it waits for its ts, within deadline.
func (a *Alerter) thread(ctx context.Context, c *slackClient, d delivery, deadline time.Time) (fsstore.AlertThread, bool, error) {
	id := threadID(d.run.Key(), d.channel)
	for {
		v, err := a.store.GetAlertThread(ctx, id)
		now := a.cfg.Now()
		switch {
		case errors.Is(err, fsstore.ErrNotFound):
			if d.refresh {
				return fsstore.AlertThread{}, false, nil
			}
			ut, err := a.store.CreateAlertThread(ctx, id, &fsstore.AlertThread{
				DagID: d.run.DagID, RunID: d.run.RunID, Channel: d.channel, State: fsstore.AlertPending,
				Claim: newHolder(), ClaimedAt: now, Parent: parentJSON(d.alert), UpdatedAt: now, ExpireAt: now.Add(a.cfg.Retention),
			})
			if errors.Is(err, fsstore.ErrExists) {
				continue
			}
			if err != nil {
				return fsstore.AlertThread{}, false, fmt.Errorf("alerts: claim thread %s: %w", id, err)
			}
			return a.postParent(ctx, c, d, id, ut, earliest(deadline, a.deadline(now)))
		case err != nil:
			return fsstore.AlertThread{}, false, fmt.Errorf("alerts: thread %s: %w", id, err)
		case v.Rec.State == fsstore.AlertPosted:
			return v.Rec, false, nil
		case d.refresh:
			return fsstore.AlertThread{}, false, nil
		case now.Sub(v.Rec.ClaimedAt) >= a.cfg.ClaimTTL:
			ut, err := a.store.UpdateAlertThreadIf(ctx, id, v.UpdateTime, map[string]any{
				"claim": newHolder(), "claimed_at": now, "parent": parentJSON(d.alert), "updated_at": now,
			})
			if errors.Is(err, fsstore.ErrConflict) {
				continue
			}
			if err != nil {
				return fsstore.AlertThread{}, false, fmt.Errorf("alerts: take over thread %s: %w", id, err)
			}
			return a.postParent(ctx, c, d, id, ut, earliest(deadline, a.deadline(now)))
		}
		// Someone is posting the parent: wait for its ts.
		if now.After(deadline) {
			return fsstore.AlertThread{}, false, &slackFailure{fmt.Errorf("alerts: the parent message of %s in %s is still being posted by another delivery", d.run.Key(), d.channel)}
		}
		if err := a.cfg.Sleep(ctx, a.cfg.PollEvery); err != nil {
			return fsstore.AlertThread{}, false, fmt.Errorf("alerts: wait for thread %s: %w", id, err)
		}
	}
}

// postParent posts the run's parent message under a held thread claim and records its ts.
func (a *Alerter) postParent(ctx context.Context, c *slackClient, d delivery, id string, ut, deadline time.Time) (fsstore.AlertThread, bool, error) {
	chID, ts, err := c.post(ctx, deadline, d.channel, "", ParentMessage(a.runInfo(&d.run, d.spec, d.alert.Owner), d.alert, d.alert))
	now := a.cfg.Now()
	if err != nil {
		// Release the thread, so the run's next alert posts the parent at once.
		if _, uerr := a.store.UpdateAlertThreadIf(ctx, id, ut, map[string]any{"claimed_at": time.Time{}, "updated_at": now}); uerr != nil {
			a.log.Warn("alerts: could not release a thread; it is taken over after its bound", "thread", id, "error", uerr)
		}
		return fsstore.AlertThread{}, false, &slackFailure{err}
	}
	a.Stats.Posted.Add(1)
	th := fsstore.AlertThread{DagID: d.run.DagID, RunID: d.run.RunID, Channel: d.channel, State: fsstore.AlertPosted,
		ChannelID: chID, TS: ts, Parent: parentJSON(d.alert)}
	if _, err := a.store.UpdateAlertThreadIf(ctx, id, ut, map[string]any{
		"state": fsstore.AlertPosted, "channel_id": chID, "ts": ts, "updated_at": now,
	}); err != nil {
		a.log.Error("alerts: parent posted; its ts could not be recorded, so a later alert may start another thread",
			"thread", id, "ts", ts, "error", err)
	}
	return th, true, nil
}

// parentJSON keeps the alert a parent message was posted with, so its updates keep showing
// it (its error and buttons) beside the run's current state.
func parentJSON(a Alert) string {
	a.Owner = ""
	b, _ := json.Marshal(a)
	return string(b)
}

// claimID and threadID are document ids: the channel (which may hold any character) is
// hashed.
func claimID(key, channel string) string { return key + "~" + chanHash(channel) }

func threadID(runKey, channel string) string { return runKey + "~" + chanHash(channel) }

func chanHash(channel string) string {
	h := sha256.Sum256([]byte(channel))
	return hex.EncodeToString(h[:8])
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func newHolder() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
