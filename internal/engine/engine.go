package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// Config tunes the engine. Zero fields take the defaults.
type Config struct {
	// RepublishAfter is how long a queued attempt may go unclaimed before the tick publishes
	// it again (5 minutes on GCP, 30 s locally).
	RepublishAfter time.Duration
	// Lease is how long a claim lasts without renewal; workers renew it every third of it.
	Lease time.Duration
	// StartGrace is how long a created run may stay queued before the tick finishes starting
	// it (its creator may have died half-way).
	StartGrace time.Duration
	// TickBatch bounds the documents one due query of the tick reads.
	TickBatch int
	// Retention is how long run and task-instance documents (with their attempts) are kept: each gets
	// expire_at = its creation + Retention, and Firestore's TTL deletes it after that
	// (DefaultRetention).
	Retention time.Duration
}

// DefaultRetention is how long runs and their task instances and attempts are kept unless
// UPDRAFT_RETENTION says otherwise.
const DefaultRetention = 90 * 24 * time.Hour

func (c Config) withDefaults() Config {
	if c.RepublishAfter <= 0 {
		c.RepublishAfter = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.StartGrace <= 0 {
		c.StartGrace = 30 * time.Second
	}
	if c.TickBatch <= 0 {
		c.TickBatch = 500
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	return c
}

// Publisher sends messages to the tasks and events topics.
type Publisher interface {
	PublishTask(ctx context.Context, data []byte) error
	PublishEvent(ctx context.Context, data []byte) error
}

// Engine drives runs. It is safe for concurrent use.
type Engine struct {
	store *fsstore.Store
	pub   Publisher
	now   func() time.Time
	log   *slog.Logger
	cfg   Config
	specs sync.Map // dagID~version → *dag.DAG; versions are immutable
	// shapes holds what every run of a DAG version derives from its spec (*dag.DAG →
	// *shape), computed once: the specs come from specs, so it is as bounded.
	shapes sync.Map
	// specLoads holds the reads of DAG versions in flight (dagID~version → *specLoad).
	specLoads sync.Map

	executor    Executor
	deadLetters DeadLetters
	timers      timers
	rec         recorder // told of every applied transition (RecordTransitions)

	// Stats counts what the engine did, for /metrics and tests.
	Stats Stats
}

// Stats are the engine's counters.
type Stats struct {
	RunsCreated, TasksQueued, Republished, Retried, Poked, PublishFailures, BadMessages, LostWorkers, DeadLettered atomic.Int64
	// SkippedIntervals counts the schedule intervals passed over without a run (catchup:
	// false and a late tick); LateTicks the DAGs a tick reached more than a period late.
	SkippedIntervals, LateTicks atomic.Int64
	// RunsSwept counts runs whose start lease passed and the tick swept; Timed the retries
	// and pokes the advancer's timers queued before the tick did.
	RunsSwept, Timed atomic.Int64
}

// New returns an engine over a store and a publisher. now may be nil (time.Now).
func New(store *fsstore.Store, pub Publisher, cfg Config, now func() time.Time, log *slog.Logger) *Engine {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Engine{store: store, pub: pub, now: now, log: log, cfg: cfg.withDefaults()}
}

// Store returns the engine's store.
func (e *Engine) Store() *fsstore.Store { return e.store }

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.now() }

// Spec returns the parsed DAG of a stored version (cached: versions never change).
func (e *Engine) Spec(ctx context.Context, dagID, version string) (*dag.DAG, error) {
	key := dagID + "~" + version
	if d, ok := e.specs.Load(key); ok {
		return d.(*dag.DAG), nil
	}
	// Callers that miss at once (a worker handed a whole ready set) share one read; should
	// it fail, each waiter reads for itself (the failure may be the first caller's context).
	l, loading := e.specLoads.LoadOrStore(key, &specLoad{done: make(chan struct{})})
	sl := l.(*specLoad)
	if loading {
		select {
		case <-sl.done:
			if sl.d != nil {
				return sl.d, nil
			}
			return e.readSpec(ctx, dagID, version)
		case <-ctx.Done():
			return nil, fmt.Errorf("engine: DAG %s version %s: %w", dagID, version, ctx.Err())
		}
	}
	defer func() { close(sl.done); e.specLoads.Delete(key) }()
	d, err := e.readSpec(ctx, dagID, version)
	sl.d = d
	return d, err
}

// readSpec reads and decodes a DAG version, and caches it.
func (e *Engine) readSpec(ctx context.Context, dagID, version string) (*dag.DAG, error) {
	v, err := e.store.GetVersion(ctx, dagID, version)
	if err != nil {
		return nil, fmt.Errorf("engine: DAG %s version %s: %w", dagID, version, err)
	}
	var d dag.DAG
	if err := json.Unmarshal([]byte(v.SpecJSON), &d); err != nil {
		return nil, fmt.Errorf("engine: decode DAG %s version %s: %w", dagID, version, err)
	}
	e.specs.Store(dagID+"~"+version, &d)
	return &d, nil
}

// specLoad is a read of a DAG version in flight, which other callers of Spec wait for.
type specLoad struct {
	done chan struct{} // closed once the read is over
	d    *dag.DAG      // nil: the read failed
}

// Timetable builds a DAG's timetable. start is used when the DAG file sets none.
func Timetable(d *dag.DAG, start time.Time) (schedule.Timetable, error) {
	tt := schedule.Timetable{Loc: d.Location(), Start: start, End: d.End}
	if d.Start != nil {
		tt.Start = *d.Start
	}
	if d.Schedule != "" {
		c, err := schedule.ParseCron(d.Schedule)
		if err != nil {
			return tt, err
		}
		tt.Cron = c
	}
	return tt, nil
}

// isConflict reports a lost race on a conditional write: re-read and decide again.
func isConflict(err error) bool { return errors.Is(err, fsstore.ErrConflict) }

func ptr[T any](v T) *T { return &v }

// maxConflictRetries bounds re-read-and-retry loops; each round means someone else made
// progress on the document, so a bound is only a guard against a bug.
const maxConflictRetries = 50

// ConfigFromEnv reads the engine's settings from the environment, so every component of a
// deployment (scheduler, dispatcher, workers) uses the same ones: UPDRAFT_REPUBLISH_AFTER,
// UPDRAFT_LEASE and UPDRAFT_START_GRACE as Go durations, and UPDRAFT_RETENTION as a Go
// duration or a number of days ("90d"). Unset variables keep the defaults.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	for name, dst := range map[string]*time.Duration{
		"UPDRAFT_REPUBLISH_AFTER": &c.RepublishAfter, "UPDRAFT_LEASE": &c.Lease, "UPDRAFT_START_GRACE": &c.StartGrace,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return c, fmt.Errorf("%s=%q is not a positive duration like 30s or 5m", name, v)
			}
			*dst = d
		}
	}
	if v := getenv("UPDRAFT_RETENTION"); v != "" {
		d, err := ParseRetention(v)
		if err != nil {
			return c, fmt.Errorf("UPDRAFT_RETENTION=%q: %w", v, err)
		}
		c.Retention = d
	}
	return c.withDefaults(), nil
}

// ParseRetention reads a retention period: a number of days ("90d") or a Go duration
// ("2160h"), positive.
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive retention like 90d or 2160h", s)
	}
	return d, nil
}

// expireAt is when a document created now is deleted by Firestore's TTL.
func (e *Engine) expireAt(now time.Time) time.Time { return now.Add(e.cfg.Retention).UTC() }

// Retention returns how long runs, task instances and attempts are kept.
func (e *Engine) Retention() time.Duration { return e.cfg.Retention }
