package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/service"
)

// faultStack is a local stack on emulators of its own, which the test kills and restarts.
type faultStack struct {
	ctx     context.Context
	project string
	set     *emulators.Set
	stack   *local.Stack
	log     *localtest.SyncBuffer
}

// startFaultStack starts private emulators (Firestore keeping snapshots in dataDir) and a
// local stack on them with a fast ticker and healer; everything stops when the test ends.
func startFaultStack(t *testing.T, dataDir string) *faultStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	set, err := emulators.StartAllWith(ctx, t.TempDir(), emulators.FirestoreOptions{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	b := &faultStack{ctx: ctx, project: emutest.Project(t), set: set, log: &localtest.SyncBuffer{}}
	t.Cleanup(func() { b.set.Stop() })
	// The stack sets the emulator hosts in this process: t.Setenv puts the shared ones back.
	t.Setenv(emulators.FirestoreHostEnv, set.Firestore.Host)
	t.Setenv(emulators.PubSubHostEnv, set.PubSub.Host)
	st, err := local.Open(ctx, local.Config{
		Project: b.project, Env: append(set.Env(), testStandIns.Env()...), LogDir: t.TempDir(),
		WorkerCmd: []string{updraftBin, "worker"}, WorkerStderr: b.log,
		Log:       slog.New(slog.NewTextHandler(b.log, nil)),
		TickEvery: 300 * time.Millisecond, HealEvery: 100 * time.Millisecond,
		Engine:    engine.Config{Lease: 20 * time.Second, RepublishAfter: 2 * time.Second},
		WorkerEnv: []string{"UPDRAFT_LEASE=20s", "UPDRAFT_REPUBLISH_AFTER=2s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	grantDevAdmin(t, ctx, st)
	b.stack = st
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
		if t.Failed() || os.Getenv("HEAL_LOG") != "" {
			t.Logf("stack log:\n%s", b.log.String())
		}
	})
	return b
}

// health is what /healthz would answer now.
func (b *faultStack) health() (map[string]string, bool) {
	return service.Health(b.ctx, b.stack.Probes())
}

// until polls cond until it holds, failing the test after two minutes.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not a timing assumption
	}
}

// kill SIGKILLs an emulator's process group and waits until it is reaped.
func kill(t *testing.T, e *emulators.Emulator) {
	t.Helper()
	if err := syscall.Kill(-e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Done():
	case <-time.After(time.Minute):
		t.Fatalf("the %s emulator (pid %d) did not exit after SIGKILL", e.Name, e.PID())
	}
}

// lines counts each line of a file.
func linesByWord(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	n := map[string]int{}
	for l := range strings.Lines(string(b)) {
		n[strings.TrimSpace(l)]++
	}
	return n
}

func chainDAG(marks string) string {
	return `id: chain
owner: owner@example.com
tasks:
  - id: a
    type: shell
    with: {command: 'echo a >> ` + marks + `'}
  - id: b
    type: shell
    needs: [a]
    with: {command: 'echo b >> ` + marks + `'}
  - id: c
    type: shell
    needs: [b]
    with: {command: 'echo c >> ` + marks + `'}
`
}

func (b *faultStack) deploy(t *testing.T, src string) {
	t.Helper()
	d, err := dag.Parse("chain.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.stack.Engine.Deploy(b.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func (b *faultStack) waitRun(t *testing.T, r *scheduler.Run) scheduler.RunState {
	t.Helper()
	var state scheduler.RunState
	until(t, "run "+r.RunID+" to finish", func() bool {
		v, err := b.stack.Store.GetRun(b.ctx, r.DagID, r.RunID)
		if err == nil {
			state = v.Rec.State
		}
		return err == nil && state.Finished()
	})
	return state
}

// TestPubSubRestartIsHealed kills the Pub/Sub emulator in the middle of a run and starts it
// again on its port, empty: /healthz turns red with the reason, then green once the healer
// has recreated the topics and subscriptions; the run started before the kill finishes with
// each task run once; each event is logged once.
func TestPubSubRestartIsHealed(t *testing.T) {
	b := startFaultStack(t, "")
	marks := filepath.Join(t.TempDir(), "marks")
	b.deploy(t, chainDAG(marks))
	if h, ok := b.health(); !ok {
		t.Fatalf("health before any fault: %v", h)
	}
	r, err := b.stack.Engine.Trigger(b.ctx, "chain", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	until(t, "task a to run", func() bool { return linesByWord(t, marks)["a"] == 1 })

	host := b.set.PubSub.Host
	kill(t, b.set.PubSub)
	h, ok := b.health()
	if ok || h["store"] != "ok" || !strings.Contains(h["queue"], "Pub/Sub emulator at "+host) {
		t.Fatalf("health with Pub/Sub dead: %v; want the queue red, naming %s", h, host)
	}
	t.Logf("/healthz with Pub/Sub dead: 503 %v", h)
	// A publish gives up with an error naming Pub/Sub instead of hanging.
	if err := b.stack.Queue.PublishEvent(b.ctx, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "Pub/Sub emulator at "+host) {
		t.Fatalf("publish with Pub/Sub dead: %v; want an error naming it", err)
	}

	ps, err := b.set.PubSub.Restart(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.set.PubSub = ps
	restarted := time.Now()
	until(t, "the healer to recreate the topics", func() bool { return b.stack.Status().Heals.TopicsRecreated == 1 })
	until(t, "health to turn green", func() bool { _, ok := b.health(); return ok })
	t.Logf("Pub/Sub answering again → topics recreated and health green: %v", time.Since(restarted).Round(time.Millisecond))
	if got := b.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s after the Pub/Sub restart; want success", got)
	}
	t.Logf("Pub/Sub answering again → the run finished: %v (the republish waits UPDRAFT_REPUBLISH_AFTER=2s)", time.Since(restarted).Round(time.Millisecond))
	if n := linesByWord(t, marks); n["a"] != 1 || n["b"] != 1 || n["c"] != 1 || len(n) != 3 {
		t.Fatalf("executions %v; want a, b and c once each", n)
	}
	log := b.log.String()
	for _, want := range []string{"answers without Updraft's topics", "queue is down"} {
		if c := strings.Count(log, want); c != 1 {
			t.Errorf("%q logged %d times; want once", want, c)
		}
	}
}

// TestFirestoreRestartIsHealed kills the Firestore emulator twice: with a saved snapshot
// (the Keeper restarts it by itself and the DAG and the run are still there) and then with
// no data left (the healer redeploys the DAG). Each time /healthz is red while it is down
// and green again after.
func TestFirestoreRestartIsHealed(t *testing.T) {
	dataDir := t.TempDir()
	b := startFaultStack(t, dataDir)
	marks := filepath.Join(t.TempDir(), "marks")
	src := chainDAG(marks)
	b.deploy(t, src)
	r, err := b.stack.Engine.Trigger(b.ctx, "chain", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := b.waitRun(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	kctx, stopKeeper := context.WithCancel(b.ctx)
	keeper := &emulators.Keeper{Set: b.set, Project: b.project, SaveEvery: time.Hour, Log: slog.New(slog.NewTextHandler(b.log, nil))}
	if err := keeper.Save(b.ctx); err != nil {
		t.Fatal(err)
	}
	keeperDone := make(chan struct{})

	// 1. Killed with a snapshot: the Keeper starts it again with its documents. It starts
	// watching only once health was seen red, or it could restart the JVM before the probe.
	host := b.set.Firestore.Host
	kill(t, b.set.Firestore)
	killed := time.Now()
	if h, ok := b.health(); ok || !strings.Contains(h["store"], "Firestore emulator at "+host) {
		t.Fatalf("health with Firestore dead: %v; want the store red, naming %s", h, host)
	} else {
		t.Logf("/healthz with Firestore dead: 503 %v", h)
	}
	go func() { defer close(keeperDone); keeper.Run(kctx) }()
	until(t, "the keeper to restart Firestore", func() bool { return keeper.Restarts() == 1 })
	until(t, "health to turn green", func() bool { _, ok := b.health(); return ok })
	t.Logf("Firestore killed → restarted by the Keeper from its snapshot, health green: %v", time.Since(killed).Round(time.Millisecond))
	if v, err := b.stack.Store.GetRun(b.ctx, r.DagID, r.RunID); err != nil || v.Rec.State != scheduler.RunSuccess {
		t.Fatalf("the run after the restart: %v %v; want it kept, success", v, err)
	}
	if _, err := b.stack.Store.GetDAG(b.ctx, "chain"); err != nil {
		t.Fatalf("the DAG after the restart: %v", err)
	}
	stopKeeper()
	<-keeperDone
	// The healer ends the first outage on its own probe; wait for it, or a second kill right
	// after reads as the same outage.
	until(t, "the healer to see the store answer again", func() bool {
		return strings.Contains(b.log.String(), "store answers again")
	})

	// 2. Killed with nothing saved: it comes back empty and the healer redeploys the DAG.
	redeployed := make(chan struct{}, 1)
	b.stack.Healer.Redeploy = func(ctx context.Context) (int, error) {
		b.deploy(t, src)
		redeployed <- struct{}{}
		return 1, nil
	}
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	kill(t, b.set.Firestore)
	if _, ok := b.health(); ok {
		t.Fatal("health green with Firestore dead")
	}
	fs, err := b.set.Firestore.Restart(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.set.Firestore = fs
	restarted := time.Now()
	until(t, "the DAG to be redeployed", func() bool {
		_, err := b.stack.Store.GetDAG(b.ctx, "chain")
		return err == nil
	})
	t.Logf("Firestore answering again, empty → DAG redeployed: %v", time.Since(restarted).Round(time.Millisecond))
	if _, err := b.stack.Store.GetRun(b.ctx, r.DagID, r.RunID); !errors.Is(err, fsstore.ErrNotFound) {
		t.Fatalf("the run after an empty restart: %v; want it gone (the test must restart empty)", err)
	}
	until(t, "health to turn green", func() bool { _, ok := b.health(); return ok })
	if got := b.stack.Status().Heals; got.DAGsRedeployed != 1 || got.StoreOutages != 2 {
		t.Fatalf("heals %+v; want 1 redeploy and 2 store outages", got)
	}
	if c := strings.Count(b.log.String(), "restarted empty"); c != 1 {
		t.Errorf("the empty restart logged %d times; want once", c)
	}
}

// TestCLIAgainstADeadEmulatorFailsFastNamingIt runs CLI commands against an emulator port
// that refuses connections and against one that accepts and never answers: each fails with
// a message naming the service and its address, within the call deadline.
func TestCLIAgainstADeadEmulatorFailsFastNamingIt(t *testing.T) {
	refused := closedPort(t)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	// One service dead, the other alive: the message names the dead one.
	for _, tc := range []struct {
		name, fsHost, psHost string
		args                 []string
		want                 string
	}{
		{"refused", refused, set.PubSub.Host, []string{"dags", "list"}, "Firestore emulator at " + refused + " refused the connection"},
		{"silent", silent.Addr().String(), set.PubSub.Host, []string{"dags", "list"}, "Firestore emulator at " + silent.Addr().String() + " did not answer within 1s"},
		{"silent pubsub", set.Firestore.Host, silent.Addr().String(), []string{"trigger", "chain"}, "Pub/Sub emulator at " + silent.Addr().String() + " did not answer within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, updraftBin, tc.args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "UPDRAFT_HOME=" + t.TempDir(),
				"GOOGLE_CLOUD_PROJECT=dead-emulator", "UPDRAFT_CALL_TIMEOUT=1s",
				emulators.FirestoreHostEnv + "=" + tc.fsHost, emulators.PubSubHostEnv + "=" + tc.psHost}
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("updraft %v hung against a dead emulator:\n%s", tc.args, out)
			}
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("updraft %v: %v\n%s\nwant a failure saying %q", tc.args, err, out, tc.want)
			}
			t.Logf("updraft %v: %s", tc.args, strings.TrimSpace(string(out)))
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// devProcess is an `updraft dev` started by a test.
type devProcess struct {
	cmd  *exec.Cmd
	out  *localtest.SyncBuffer
	done chan struct{}
}

// devEnv is this process's environment without the emulators' and stand-ins' variables of
// the test binary, with UPDRAFT_HOME set: `updraft dev` starts its own.
func devEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(k, "_EMULATOR_HOST") || (strings.HasPrefix(k, "UPDRAFT_") && k != "UPDRAFT_CACHE") || k == "GOOGLE_CLOUD_PROJECT" {
			continue
		}
		env = append(env, kv)
	}
	// Only the save at Ctrl-C counts: no periodic save happens during a test.
	return append(env, "UPDRAFT_HOME="+home, "UPDRAFT_DEV_SAVE_EVERY=1h")
}

// startDev starts `updraft dev` on dagDir with its state in home and waits until its
// /healthz is green.
func startDev(t *testing.T, home, dagDir string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(updraftBin, append(append([]string{"dev", "--addr", "127.0.0.1:0", "--tick", "1"}, args...), dagDir)...)
	cmd.Env = devEnv(home)
	p := &devProcess{cmd: cmd, out: &localtest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(p.done); _ = cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("updraft dev output:\n%s", p.out.String())
		}
	})
	until(t, "updraft dev to serve a green /healthz", func() bool {
		select {
		case <-p.done:
			t.Fatalf("updraft dev exited:\n%s", p.out.String())
		default:
		}
		b, err := os.ReadFile(filepath.Join(home, "dev.json"))
		var st struct{ Addr string }
		if err != nil || json.Unmarshal(b, &st) != nil || st.Addr == "" {
			return false
		}
		resp, err := http.Get("http://" + st.Addr + "/healthz")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"store": "ok"`) && strings.Contains(string(body), `"queue": "ok"`)
	})
	return p
}

// stop sends SIGINT (Ctrl-C) and waits until the process has exited.
func (p *devProcess) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		t.Errorf("updraft dev did not stop within 2 minutes of SIGINT")
	}
}

// updraft runs the CLI against the `updraft dev` whose state is in home.
func updraft(t *testing.T, home string, args ...string) string {
	t.Helper()
	cmd := exec.Command(updraftBin, args...)
	cmd.Env = devEnv(home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("updraft %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestDevKeepsItsRunsAcrossARestart runs a DAG under `updraft dev`, stops it with SIGINT and
// starts it again: the run is still there (saved at Ctrl-C: the periodic save is an hour
// away). `updraft dev --reset` then starts clean.
func TestDevKeepsItsRunsAcrossARestart(t *testing.T) {
	home, dagDir := t.TempDir(), t.TempDir()
	marks := filepath.Join(t.TempDir(), "marks")
	src := `id: kept
owner: owner@example.com
tasks:
  - id: mark
    type: shell
    with: {command: 'echo mark >> ` + marks + `'}
`
	if err := os.WriteFile(filepath.Join(dagDir, "kept.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := startDev(t, home, dagDir)
	out := updraft(t, home, "trigger", "kept")
	runID := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "manual__") || strings.HasPrefix(f, "kept/manual__") {
			runID = strings.TrimPrefix(f, "kept/")
		}
	}
	if runID == "" {
		t.Fatalf("no run id in the trigger's output:\n%s", out)
	}
	until(t, "the run to succeed", func() bool {
		return strings.Contains(updraft(t, home, "runs", "show", "kept/"+runID), "success")
	})
	dev.stop(t)

	dev = startDev(t, home, dagDir)
	if got := updraft(t, home, "runs", "list", "kept"); !strings.Contains(got, runID) || !strings.Contains(got, "success") {
		t.Fatalf("runs after a restart of updraft dev:\n%s\nwant %s, success", got, runID)
	}
	if n := linesByWord(t, marks)["mark"]; n != 1 {
		t.Fatalf("the task ran %d times; want once (a restart must not run it again)", n)
	}
	dev.stop(t)

	startDev(t, home, dagDir, "--reset")
	if got := updraft(t, home, "runs", "list", "kept"); strings.Contains(got, runID) {
		t.Fatalf("runs after updraft dev --reset:\n%s\nwant none", got)
	}
}
