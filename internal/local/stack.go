package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/backend"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
)

// Config configures a local stack.
type Config struct {
	Project string
	// Env holds the emulator host variables (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST):
	// set in this process for its clients, and passed to workers.
	Env []string
	// WorkerEnv is more environment for workers only (e.g. UPDRAFT_LEASE).
	WorkerEnv []string
	// LogDir keeps attempt logs.
	LogDir string
	// WorkerCmd starts the worker binary.
	WorkerCmd []string
	// TickEvery is the local ticker's interval (0: no ticker).
	TickEvery time.Duration
	// Engine tunes the engine (RepublishAfter defaults to 30 s locally).
	Engine engine.Config
	// MaxWorkers bounds concurrent container attempts (worker subprocesses, or attempts on
	// warm workers).
	MaxWorkers int
	// WarmWorkers is the number of warm worker processes that run container attempts, many
	// each (Pool); 0 starts a worker process per attempt.
	WarmWorkers int
	// WorkerStderr receives worker subprocesses' own errors (nil: discarded).
	WorkerStderr io.Writer
	// Alerts configures the Slack alerts (its SlackAPIURL defaults to the environment's
	// UPDRAFT_SLACK_API_URL, its clock to Now).
	Alerts alerts.Config
	// HealEvery is how often the Healer looks at the emulators (0: HealEvery; < 0: never).
	HealEvery time.Duration
	Log       *slog.Logger
	Now       func() time.Time
}

// Stack is everything that runs Updraft locally besides the emulators.
type Stack struct {
	Config
	Store      *fsstore.Store
	Queue      *psqueue.Queue
	Engine     *engine.Engine
	Dispatcher *Dispatcher
	Registry   *taskrun.Registry
	// Alerter posts the Slack alerts, from its own events subscription and the tick.
	Alerter *alerts.Alerter
	// Healer repairs what an emulator restart loses; set its Redeploy before Run to have
	// DAGs redeployed when Firestore comes back empty.
	Healer *Healer

	closeSecrets func()
	mu           sync.Mutex
	lastTick     engine.TickReport
	ticks        int64
	advanced     int64
}

// Open connects a stack to the backends named in cfg and creates the topics it uses.
func Open(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return nil, err
		}
	}
	// Clients that reconnect at once when an emulator comes back.
	fsOpts, err := ClientOptions(ServiceFirestore, cfg.Project, 0, "")
	if err != nil {
		return nil, err
	}
	psOpts, err := ClientOptions(ServicePubSub, cfg.Project, 0, "")
	if err != nil {
		return nil, err
	}
	st, err := fsstore.Open(ctx, cfg.Project, fsOpts...)
	if err != nil {
		return nil, err
	}
	q, err := psqueue.Open(ctx, cfg.Project, psOpts...)
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := q.Ensure(ctx); err != nil {
		st.Close()
		q.Close()
		return nil, err
	}
	// The engine of this process (trigger, tick, advancer, inline attempts) kicks the
	// dispatcher after each task message, as warm workers do (Dispatcher.Kick).
	var disp *Dispatcher
	eng := engine.New(st, kickingPublisher{Publisher: q, kick: func() { kickLocal(disp) }}, cfg.Engine, cfg.Now, cfg.Log)
	var pool *Pool
	if cfg.WarmWorkers > 0 {
		pool = &Pool{Cmd: cfg.WorkerCmd, Size: cfg.WarmWorkers, Stderr: cfg.WorkerStderr, Log: cfg.Log, Kick: func() { kickLocal(disp) }}
	}
	eng.SetExecutor(Processes{Pool: pool})
	newResolver, closeSecrets, err := secrets.Factory(ctx, cfg.Project, os.Getenv)
	if err != nil {
		st.Close()
		q.Close()
		return nil, err
	}
	reg := tasktypes.WithQueue(q)
	env := append([]string{"GOOGLE_CLOUD_PROJECT=" + cfg.Project, "UPDRAFT_LOG_DIR=" + cfg.LogDir}, cfg.Env...)
	env = append(env, cfg.WorkerEnv...)
	s := &Stack{Config: cfg, Store: st, Queue: q, Engine: eng, Registry: reg, closeSecrets: closeSecrets,
		Healer: &Healer{Store: st, Queue: q, Every: cfg.HealEvery, Log: cfg.Log}}
	q.OnReceiveError = func(sub string, err error) {
		cfg.Log.Debug("subscription stream failed; subscribing again", "subscription", sub, "error", err)
	}
	// Inline types run here and must see what a worker subprocess sees.
	workerEnv := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		workerEnv[k] = v
	}
	getenv := func(k string) string {
		if v, ok := workerEnv[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	acfg := cfg.Alerts
	if acfg.SlackAPIURL == "" {
		acfg.SlackAPIURL = getenv(alerts.EnvSlackAPIURL)
	}
	if acfg.Now == nil {
		acfg.Now = cfg.Now
	}
	s.Alerter = backend.NewAlerter(st, eng, newResolver, acfg, cfg.Log)
	if pool != nil {
		pool.Env = env
	}
	s.Dispatcher = &Dispatcher{
		Queue: q, Registry: reg, WorkerCmd: cfg.WorkerCmd, Env: env, MaxWorkers: cfg.MaxWorkers,
		WorkerStderr: cfg.WorkerStderr, Log: cfg.Log, Pool: pool,
		Worker: &taskrun.Worker{Engine: eng, Registry: reg, Name: fmt.Sprintf("dispatcher:%d", os.Getpid()),
			ExecutorRef: ProcessRef(os.Getpid()), LogDir: cfg.LogDir, Log: cfg.Log, NewResolver: newResolver, Getenv: getenv},
	}
	s.Dispatcher.kick = make(chan struct{}, 1)
	disp = s.Dispatcher
	return s, nil
}

// kickingPublisher publishes through Publisher and calls kick after each task message.
type kickingPublisher struct {
	engine.Publisher
	kick func()
}

func (p kickingPublisher) PublishTask(ctx context.Context, data []byte) error {
	err := p.Publisher.PublishTask(ctx, data)
	if err == nil {
		p.kick()
	}
	return err
}

// Close releases the clients.
func (s *Stack) Close() error {
	s.closeSecrets()
	s.Queue.Close()
	return s.Store.Close()
}

// Run runs the dispatcher, the advancer and the ticker until ctx ends.
func (s *Stack) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- s.Dispatcher.Run(ctx) }()
	go func() {
		defer wg.Done()
		errs <- s.Queue.Receive(ctx, psqueue.SubAdvance, 64, func(ctx context.Context, data []byte) error {
			err := s.Engine.HandleEvent(ctx, data)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("advance failed", "error", err)
			}
			s.mu.Lock()
			s.advanced++
			s.mu.Unlock()
			return err
		})
	}()
	// Dead letters: a task message the dispatcher could never handle fails its task; an
	// event the advancer could never handle is logged (the tick's follow-up covers it).
	// Streamed here, so the engine's tick must not drain them too (no SetDeadLetters).
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- s.Queue.Receive(ctx, psqueue.SubTasksDead, 16, func(ctx context.Context, data []byte) error {
			return s.Engine.HandleDeadTask(ctx, data)
		})
	}()
	go func() {
		defer wg.Done()
		errs <- s.Queue.Receive(ctx, psqueue.SubEventsDead, 16, s.Engine.HandleDeadEvent)
	}()
	// Alerts read the same events on their own subscription: Slack never delays a task.
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- s.Queue.Receive(ctx, psqueue.SubAlerts, 16, func(ctx context.Context, data []byte) error {
			err := s.Alerter.HandleEvent(ctx, data)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("alert event failed", "error", err)
			}
			return err
		})
	}()
	if s.TickEvery > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.tickLoop(ctx) }()
	}
	if s.HealEvery >= 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Healer.Run(ctx) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) tickLoop(ctx context.Context) {
	t := time.NewTicker(s.TickEvery)
	defer t.Stop()
	for {
		s.TickOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TickOnce runs one tick and remembers its report.
func (s *Stack) TickOnce(ctx context.Context) engine.TickReport {
	rep, err := s.Engine.Tick(ctx)
	if err != nil && ctx.Err() == nil {
		s.Log.Error("tick failed", "error", err)
	}
	for _, e := range rep.Errors {
		if ctx.Err() != nil { // stopping (Ctrl-C): each cut-short step is no news
			break
		}
		s.Log.Warn("tick", "error", e)
	}
	if rep.RunsCreated+rep.Republished+rep.Retried+rep.RunsStarted+rep.LostWorkers+rep.FollowedUp > 0 {
		s.Log.Info("tick", "runs_created", rep.RunsCreated, "republished", rep.Republished, "retried", rep.Retried,
			"lost_workers", rep.LostWorkers, "followed_up", rep.FollowedUp)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	arep, err := s.Alerter.Tick(ctx, now())
	if err != nil && ctx.Err() == nil {
		s.Log.Error("alerts tick failed", "error", err)
	}
	for _, e := range arep.Errors {
		if ctx.Err() != nil {
			break
		}
		s.Log.Warn("alerts tick", "error", e)
	}
	if arep.Digest+arep.SLAMisses > 0 {
		s.Log.Info("alerts tick", "digest", arep.Digest, "sla_misses", arep.SLAMisses)
	}
	s.mu.Lock()
	s.lastTick = rep
	s.ticks++
	s.mu.Unlock()
	return rep
}

// Status is what the scheduler's status endpoint shows.
type Status struct {
	Project        string            `json:"project"`
	Ticks          int64             `json:"ticks"`
	LastTick       engine.TickReport `json:"last_tick"`
	EventsHandled  int64             `json:"events_handled"`
	WorkersStarted int64             `json:"workers_started"`
	WorkersRunning int               `json:"workers_running"`
	// AttemptsPooled counts the container attempts handed to warm workers.
	AttemptsPooled int64 `json:"attempts_pooled"`
	BadMessages    int64 `json:"bad_messages"`
	RunsCreated    int64 `json:"runs_created"`
	TasksQueued    int64 `json:"tasks_queued"`
	Republished    int64 `json:"republished"`
	LostWorkers    int64 `json:"lost_workers"`
	DeadLettered   int64 `json:"dead_lettered"`
	AlertsPosted   int64 `json:"alerts_posted"`
	AlertsFailed   int64 `json:"alerts_failed"`
	// Heals is what the Healer repaired after emulator restarts.
	Heals HealCounts `json:"heals"`
	// SkippedIntervals counts schedule intervals passed over (catchup: false, a late tick);
	// LateTicks the DAGs a tick reached more than one period late.
	SkippedIntervals int64 `json:"skipped_intervals"`
	LateTicks        int64 `json:"late_ticks"`
}

// Status reports what the stack has done.
func (s *Stack) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	started, running := s.Dispatcher.Spawned.Load(), len(s.Dispatcher.Running())
	if p := s.Dispatcher.Pool; p != nil {
		started += p.Started.Load()
		running += len(p.Busy())
	}
	return Status{
		Project: s.Project, Ticks: s.ticks, LastTick: s.lastTick, EventsHandled: s.advanced,
		WorkersStarted: started, WorkersRunning: running, AttemptsPooled: s.Dispatcher.Pooled.Load(),
		BadMessages: s.Dispatcher.BadMessages.Load() + s.Engine.Stats.BadMessages.Load(),
		RunsCreated: s.Engine.Stats.RunsCreated.Load(), TasksQueued: s.Engine.Stats.TasksQueued.Load(),
		Republished: s.Engine.Stats.Republished.Load(), LostWorkers: s.Engine.Stats.LostWorkers.Load(),
		DeadLettered: s.Engine.Stats.DeadLettered.Load(),
		AlertsPosted: s.Alerter.Stats.Posted.Load(), AlertsFailed: s.Alerter.Stats.Failed.Load(),
		Heals:            s.Healer.Counts(),
		SkippedIntervals: s.Engine.Stats.SkippedIntervals.Load(), LateTicks: s.Engine.Stats.LateTicks.Load(),
	}
}

// kickLocal kicks d, once Open has made it.
func kickLocal(d *Dispatcher) {
	if d != nil {
		d.Kick()
	}
}
