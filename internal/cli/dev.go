package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/api"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/internal/web"
	"github.com/updraft-dev/updraft/scheduler/service"
	"google.golang.org/api/option"
)

// workerCmd is how the local dispatcher starts a worker: UPDRAFT_WORKER_CMD, else this very
// binary's `worker` command.
func (a *App) workerCmd() ([]string, error) {
	if c := strings.Fields(a.Getenv("UPDRAFT_WORKER_CMD")); len(c) > 0 {
		return c, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the updraft binary to run workers: %w", err)
	}
	return []string{exe, "worker"}, nil
}

// emulatorSet returns running emulators: from the environment, from a running `updraft dev`,
// or started now (stop them with the returned Set's Stop).
func (a *App) emulatorSet(ctx context.Context) (*emulators.Set, error) {
	if s, ok := emulators.FromEnv(); ok {
		return s, nil
	}
	if st := a.readDevState(); st != nil {
		return &emulators.Set{
			Firestore: &emulators.Emulator{Name: "firestore", Host: st.FirestoreHost},
			PubSub:    &emulators.Emulator{Name: "pubsub", Host: st.PubSubHost},
		}, nil
	}
	if err := emulators.Check(); err != nil {
		return nil, err
	}
	fmt.Fprintln(a.Stderr, "starting the Firestore and Pub/Sub emulators…")
	return emulators.StartAll(ctx, filepath.Join(a.home(), "emulators"))
}

func cmdDev(ctx context.Context, a *App, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "where the scheduler listens (loopback)")
	allowRemote := fs.Bool("allow-remote", false, "let --addr be a non-loopback address: auth is off, so anyone who reaches it is admin")
	tick := fs.Float64("tick", 5, "local ticker interval, seconds")
	project := fs.String("project", "updraft-dev", "project id on the emulators")
	reset := fs.Bool("reset", false, "start with empty emulators: forget the runs and history kept from earlier runs")
	warmWorkers := fs.Int("warm-workers", 4, "warm worker processes that run shell and go attempts, many each (0: a worker process per attempt)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("name at most one DAG folder")
	}
	if *tick <= 0 {
		return usagef("--tick must be a positive number of seconds")
	}
	if !web.IsLoopbackAddr(*addr) {
		if !*allowRemote {
			return usagef("--addr %s is not a loopback address: the dev server runs with auth off (everyone is admin), "+
				"so it listens on 127.0.0.1 only; add --allow-remote if you really mean to serve other machines", *addr)
		}
		fmt.Fprintf(a.Stderr, "WARNING: updraft dev listens on %s with auth OFF: anyone who can reach it is admin and can run shell commands here.\n", *addr)
	}
	dagDir := "examples/dags"
	if len(pos) == 1 {
		dagDir = pos[0]
	}
	if st, err := os.Stat(dagDir); err != nil || !st.IsDir() {
		return fmt.Errorf("DAG folder %s not found: run from the repository root or name a folder (updraft dev DIR)", dagDir)
	}
	if st := a.readDevState(); st != nil {
		return fmt.Errorf("updraft dev is already running (pid %d, %s); stop it first", st.PID, st.Addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pick another with --addr)", *addr, err)
	}
	defer ln.Close()
	workerCmd, err := a.workerCmd()
	if err != nil {
		return err
	}
	set, err := a.devEmulators(ctx, *reset)
	if err != nil {
		return err
	}
	defer set.Stop()
	defer keepEmulators(ctx, a, set, *project)() // before set.Stop: the last save

	standIns, err := local.StartStandIns(ctx, local.StandInConfig{
		Dir: filepath.Join(a.home(), "stand-ins"), CloudRunJobs: filepath.Join(filepath.Dir(dagDir), "cloudrun-jobs.json"),
		SlackUsers: devSlackUsers,
	})
	if err != nil {
		return err
	}
	defer standIns.Stop()
	// BigQuery starts when a DAG uses it (or a request asks for it), building it first if
	// this machine never did: in the background, with a progress line.
	bq, err := local.NewBigQuery(local.BigQueryConfig{Project: *project, LogDir: filepath.Join(a.home(), "stand-ins"),
		OnReady: func(ctx context.Context, emulator []option.ClientOption) error {
			return local.SeedExamples(ctx, *project, time.Now(), emulator...)
		},
		OnProgress: func(line string) { fmt.Fprintln(a.Stderr, "BigQuery emulator: "+line) },
	})
	if err != nil {
		return err
	}
	defer bq.Stop()
	env := append(append(set.Env(), standIns.Env()...), bq.Env()...)

	logDir := filepath.Join(a.home(), "logs")
	log := a.logger()
	// Alerts go to the fake Slack (its URL is in env), with a digest channel of their own.
	alertCfg, err := alerts.ConfigFromEnv(a.Getenv)
	if err != nil {
		return err
	}
	if alertCfg.UIURL == "" {
		alertCfg.UIURL = "http://" + ln.Addr().String()
	}
	if alertCfg.DigestChannel == "" {
		alertCfg.DigestChannel = devDigestChannel
	}
	// Workers render .ti.log_url with the UI's address: this server's.
	env = append(env, alerts.EnvUIURL+"="+alertCfg.UIURL)
	// The engine's settings (UPDRAFT_RETENTION, UPDRAFT_LEASE…) as every other entry point reads them.
	engCfg, err := engine.ConfigFromEnv(a.Getenv)
	if err != nil {
		return err
	}
	stack, err := local.Open(ctx, local.Config{
		Project: *project, Env: env, LogDir: logDir, WorkerCmd: workerCmd, Engine: engCfg, WarmWorkers: *warmWorkers,
		TickEvery: time.Duration(*tick * float64(time.Second)), Log: log, WorkerStderr: newConsoleLines(a.Stderr), Alerts: alertCfg,
	})
	if err != nil {
		return err
	}
	defer stack.Close()
	res, err := a.loadDAGs([]string{dagDir})
	if err != nil {
		return err
	}
	if err := pinLocal(res.DAGs, dagDir); err != nil { // the folder in place: edits show at the next try
		return err
	}
	if err := deployAll(ctx, a, stack.Engine, res, true); err != nil && len(res.Errors) == 0 {
		return err
	}
	for _, d := range res.DAGs {
		if dagUsesBigQuery(d) {
			bq.Want()
		}
	}

	stack.Healer.Redeploy = devRedeploy(a, stack, dagDir)
	h := &service.Handler{
		Probes:   stack.Probes(),
		Tick:     func(ctx context.Context) (engine.TickReport, error) { return stack.TickOnce(ctx), nil },
		Status:   func() any { return stack.Status() },
		Counters: func() map[string]float64 { return counters(stack) },
	}
	mux := h.Mux()
	mux.HandleFunc("GET /examples/orders", local.SampleOrders)
	url := "http://" + ln.Addr().String()
	if err := seedDevSecrets(ctx, *project, url); err != nil {
		return err
	}
	if actions, err := devSlackActions(ctx, *project, stack, log); err != nil {
		log.Warn("POST /slack/actions is off", "error", err)
	} else {
		mux.Handle("POST /slack/actions", actions)
		defer actions.Wait()
	}
	ui, err := devUI(ctx, a, stack, dagDir, standIns.Slack.URL)
	if err != nil {
		return err
	}
	mux.Handle("/", ui) // the UI and /api/v1, as the dev identity
	// Auth is off locally: no other site's page may reach the server (DNS rebinding, cross-site
	// writes). POST /slack/actions has no Origin and verifies Slack's signature.
	srv := &http.Server{Handler: web.DevGuard(mux, ln.Addr().String(), *allowRemote && !web.IsLoopbackAddr(*addr)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	state := devState{PID: os.Getpid(), Project: *project, FirestoreHost: set.Firestore.Host, PubSubHost: set.PubSub.Host,
		LogDir: logDir, Addr: ln.Addr().String(), StandIns: append(standIns.Env(), bq.Env()...), DagDir: absPath(dagDir)}
	if err := writeState(a.stateFile(), state); err != nil {
		return err
	}
	defer a.removeOwnState()

	banner := fmt.Sprintf(`
Updraft is running locally (project %s on the emulators).
  UI          %s/ (as %s, admin; the Slack inbox at %s/slack)
  scheduler   %s/healthz · %s/api/status · %s/metrics
  emulators   FIRESTORE_EMULATOR_HOST=%s PUBSUB_EMULATOR_HOST=%s
  stand-ins   BigQuery (%s, dataset updraft_examples; %s), Secret Manager, Slack ({{bin}} slack inbox),
              Cloud Run jobs (%s) and their logs, Cloud Storage (the bundle bucket of {{bin}} dags deploy)
  DAGs        %s (edits are redeployed within seconds; scripts and Python are used in place), ticking every %gs
  alerts      to the fake Slack; a digest of failures to %s every %s ({{bin}} slack inbox)
  logs        %s
  state       %s (kept across restarts; {{bin}} dev --reset starts clean)

Try, in another terminal:
  {{bin}} dags list
  {{bin}} runs list every_minute          # a new run appears each minute
  {{bin}} trigger hello_chain && {{bin}} runs list hello_chain
  {{bin}} runs show hello_chain/<RUN_ID>   ·   {{bin}} logs hello_chain/<RUN_ID> extract

Ctrl-C stops everything (workers and the emulators' JVMs included).
`, *project, url, devEmail(a), url, url, url, url, set.Firestore.Host, set.PubSub.Host, bq.Host(), bq.Status(), filepath.Join(filepath.Dir(dagDir), "cloudrun-jobs.json"), dagDir, *tick, alertCfg.DigestChannel, stack.Alerter.Config().DigestEvery, logDir, devStateWhere(a, set))
	fmt.Fprint(a.Stdout, strings.ReplaceAll(banner, "{{bin}}", a.name()))

	go watchDAGs(ctx, a, stack.Engine, dagDir, 2*time.Second, bq.Want)
	err = stack.Run(ctx)
	fmt.Fprintln(a.Stderr, "stopping…")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// watchDAGs redeploys the DAG folder's changed files, so an edit shows up without a command.
func watchDAGs(ctx context.Context, a *App, eng *engine.Engine, dir string, every time.Duration, wantBigQuery func()) {
	last := map[string]string{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := dag.LoadFiles([]string{dir}, parseOptionsIn(dir))
		if err != nil || pinLocal(res.DAGs, dir) != nil {
			continue
		}
		for f, ps := range res.Errors {
			if key := ps.Error(); last[f] != key {
				last[f] = key
				fmt.Fprintf(a.Stderr, "import error in %s:\n%s\n", f, key)
			}
		}
		for _, d := range res.DAGs {
			if last[d.Source.File] == d.Source.Hash {
				continue
			}
			src, err := os.ReadFile(d.Source.File)
			if err != nil {
				continue
			}
			out, err := eng.Deploy(ctx, d, src)
			if err != nil {
				fmt.Fprintf(a.Stderr, "redeploy %s: %v\n", d.ID, err)
				continue
			}
			last[d.Source.File] = d.Source.Hash
			if dagUsesBigQuery(d) {
				wantBigQuery()
			}
			if out != engine.Unchanged {
				fmt.Fprintf(a.Stdout, "%s %s (%s)\n", out, d.ID, d.Source.File)
			}
		}
	}
}

func counters(s *local.Stack) map[string]float64 {
	st := s.Status()
	return map[string]float64{
		"updraft_ticks_total":                float64(st.Ticks),
		"updraft_tick_duration_seconds":      st.LastTick.Duration.Seconds(),
		"updraft_dagruns_created_total":      float64(st.RunsCreated),
		"updraft_tasks_queued_total":         float64(st.TasksQueued),
		"updraft_attempts_republished_total": float64(st.Republished),
		"updraft_workers_started_total":      float64(st.WorkersStarted),
		"updraft_workers_running":            float64(st.WorkersRunning),
		"updraft_attempts_pooled_total":      float64(st.AttemptsPooled),
		"updraft_bad_messages_total":         float64(st.BadMessages),
		"updraft_task_events_handled_total":  float64(st.EventsHandled),
		"updraft_alerts_posted_total":        float64(st.AlertsPosted),
		"updraft_alerts_failed_total":        float64(st.AlertsFailed),
		"updraft_intervals_skipped_total":    float64(st.SkippedIntervals),
		"updraft_late_ticks_total":           float64(st.LateTicks),
		"updraft_runs_swept_total":           float64(s.Engine.Stats.RunsSwept.Load()),
	}
}

func writeState(path string, st devState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(path, b, 0o644)
}

// devDigestChannel is where `updraft dev` posts the failure digest unless
// UPDRAFT_ALERT_DIGEST_CHANNEL says otherwise.
const devDigestChannel = "#updraft-digest"

// devSlackUsers are the fake Slack workspace's members: the example DAGs' owners.
var devSlackUsers = []slackfake.User{
	{ID: "U0DATAENG1", Name: "data-eng", Email: "data-eng@example.com"},
	{ID: "U0ANALYTI1", Name: "analytics", Email: "analytics@example.com"},
	{ID: "U0GROWTH01", Name: "growth-data", Email: "growth-data@example.com"},
}

// seedDevSecrets creates the connections the example DAGs use, unless they exist: the Slack
// bot token of the fake workspace and the sample orders API served by `updraft dev`.
func seedDevSecrets(ctx context.Context, project, url string) error {
	c, err := secrets.Open(ctx, project, os.Getenv)
	if err != nil {
		return err
	}
	defer c.Close()
	seeds := map[string]string{
		"updraft-connections-slack":       `{"conn_type": "slack", "password": "` + "xox" + `b-local-dev-fake"}`,
		"updraft-connections-orders_api":  `{"conn_type": "http", "host": "` + url + `"}`,
		"updraftsys-slack-signing-secret": devSlackSigningSecret,
	}
	for name, value := range seeds {
		if _, err := c.Access(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, secrets.ErrNotFound) {
			return err
		}
		if err := c.Set(ctx, name, value); err != nil {
			return err
		}
	}
	return nil
}

// devEmail is the dev identity: UPDRAFT_DEV_USER, else auth's default.
func devEmail(a *App) string {
	if e := strings.TrimSpace(a.Getenv(auth.EnvDevUser)); e != "" {
		return e
	}
	return auth.DefaultDevEmail
}

// devUI is the web UI and REST API over the local stack, with auth off: every request is the
// dev identity (granted admin here), or the email in X-Updraft-Dev-User.
func devUI(ctx context.Context, a *App, stack *local.Stack, dagDir, slackURL string) (http.Handler, error) {
	acc := access.New(stack.Store, nil)
	if _, err := acc.Grant(ctx, devEmail(a), access.Admin, access.Actor{Who: "updraft dev", From: "cli"}); err != nil {
		return nil, fmt.Errorf("grant the dev identity admin: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	bundles, err := gcsbundles.NewCache(ctx, os.Getenv) // the stand-in's bucket, set by local.Open
	if err != nil {
		return nil, err
	}
	c := console.New(console.Config{Engine: stack.Engine, Store: stack.Store, Access: acc, Logs: console.FileLogs{},
		ImportErrors: console.DirImportErrors(dagDir, parseOptions()), Bundles: bundles})
	return web.New(web.Config{
		Console: c, API: api.New(c, api.Options{Identify: web.Identify, CSRFSecret: secret}),
		Auth: auth.NewDev(devEmail(a), a.logger()).Middleware, CSRFSecret: secret, Dev: true,
		SlackInbox: web.FakeSlackInbox(slackURL), Log: a.logger(),
	}), nil
}

// removeOwnState deletes dev.json if it is still this process's: a second dev that replaced
// it keeps it.
func (a *App) removeOwnState() {
	b, err := os.ReadFile(a.stateFile())
	if err != nil {
		return
	}
	var st devState
	if json.Unmarshal(b, &st) == nil && st.PID != os.Getpid() {
		return
	}
	_ = os.Remove(a.stateFile())
}
