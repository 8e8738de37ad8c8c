package functions_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/updraft-dev/updraft/emulators"
	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/functions"
	"github.com/updraft-dev/updraft/internal/auth"
	"github.com/updraft-dev/updraft/internal/auth/authtest"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/proctree"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/internal/runner"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/worker"
)

// runnerTopic is the warm runner's topic in each test's project.
const runnerTopic = "updraft-runner"

// pushTo makes a push subscription from a topic of the test's project to an endpoint, as
// Terraform does on GCP (without the OIDC token, which the emulator does not send).
func (b *bundle) pushTo(t testing.TB, topic, sub, endpoint string, createTopic bool) {
	t.Helper()
	c, err := pubsub.NewClient(b.ctx, b.project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if createTopic {
		if _, err := c.TopicAdminClient.CreateTopic(b.ctx, &pubsubpb.Topic{Name: "projects/" + b.project + "/topics/" + topic}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(b.ctx, &pubsubpb.Subscription{
		Name:  "projects/" + b.project + "/subscriptions/" + sub,
		Topic: "projects/" + b.project + "/topics/" + topic, AckDeadlineSeconds: 60,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: endpoint},
	}); err != nil {
		t.Fatal(err)
	}
}

// gcpPath wires the GCP path on the stand-ins: the tasks topic pushes to a Dispatch service
// built from the environment; with a runner, Dispatch sends what fits to the runner topic,
// which pushes to the warm runner service (the worker binary with `runner`, on the Cloud Run
// stand-in). It returns the runner service (nil without one).
func (b *bundle) gcpPath(t testing.TB, withRunner bool) *runemu.Service {
	t.Helper()
	var svc *runemu.Service
	if withRunner {
		set, ok := emulators.FromEnv()
		if !ok {
			t.Fatal("emulators not in the environment")
		}
		env := map[string]string{"GOOGLE_CLOUD_PROJECT": b.project, "UPDRAFT_AUTH": "off",
			worker.EnvRunnerConcurrency: "4", "UPDRAFT_LEASE": "10s"}
		for _, kv := range set.Env() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		var err error
		svc, err = cloudRun.StartService("runner-"+b.prefix, runemu.ServiceSpec{Command: []string{workerBin, worker.RunnerArg}, Env: env})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Stop(5 * time.Second) })
		b.pushTo(t, runnerTopic, "runner-push", svc.URL, true)
		b.env[runjobs.EnvRunnerTopic] = runnerTopic
	}
	srv := httptest.NewServer(b.handler(t, functions.TargetDispatch))
	t.Cleanup(srv.Close)
	b.pushTo(t, psqueue.TopicTasks, "dispatch-push", srv.URL, false)
	return svc
}

// chainDAG is three shell tasks in a chain, each appending its name to a file once per run
// and printing its XCom.
func chainDAG(file string) string {
	task := func(id, needs string) string {
		return fmt.Sprintf(`  - id: %s
    type: shell
    timeout: 2m%s
    with: {command: "echo %s >> %s && echo '{\"task\": \"%s\"}'"}
`, id, needs, id, file, id)
	}
	return "id: chain\nowner: owner@example.com\ntasks:\n" + task("a", "") + task("b", "\n    needs: [a]") + task("c", "\n    needs: [b]")
}

type chainResult struct {
	states map[string]scheduler.TaskState
	xcoms  map[string]string
	lines  string
	refs   []string // the attempts' executor references
}

func runChain(t testing.TB, withRunner bool) (chainResult, *bundle) {
	b := setup(t)
	b.gcpPath(t, withRunner)
	file := filepath.Join(t.TempDir(), "lines")
	b.deploy(t, chainDAG(file))
	r := b.trigger(t, "chain", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	res := chainResult{states: map[string]scheduler.TaskState{}, xcoms: map[string]string{}}
	for _, task := range []string{"a", "b", "c"} {
		ti := b.waitTask(t, r, task)
		res.states[task] = ti.State
		as, err := b.st.ListAttempts(b.ctx, r.DagID, r.RunID, task)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			res.xcoms[task] = a.Rec.XCom
			res.refs = append(res.refs, a.Rec.ExecutorRef)
		}
	}
	lines, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res.lines = string(lines)
	return res, b
}

func TestChainRunsTheSameThroughTheRunnerAsThroughJobs(t *testing.T) {
	t.Parallel()
	viaRunner, rb := runChain(t, true)
	viaJobs, jb := runChain(t, false)

	for _, res := range []chainResult{viaRunner, viaJobs} {
		if res.lines != "a\nb\nc\n" {
			t.Errorf("the tasks wrote %q; want each once, in order", res.lines)
		}
		for _, task := range []string{"a", "b", "c"} {
			if res.states[task] != scheduler.TaskSuccess || res.xcoms[task] != fmt.Sprintf(`{"task": "%s"}`, task) {
				t.Errorf("%s is %s with XCom %s; want success with its own", task, res.states[task], res.xcoms[task])
			}
		}
		if len(res.refs) != 3 {
			t.Errorf("%d attempts; want one per task: %v", len(res.refs), res.refs)
		}
	}
	if !maps3Equal(viaRunner, viaJobs) {
		t.Errorf("runner path %v %v, job path %v %v; want the same states and XComs", viaRunner.states, viaRunner.xcoms, viaJobs.states, viaJobs.xcoms)
	}
	for _, ref := range viaRunner.refs {
		if !strings.HasPrefix(ref, worker.RunnerRefPrefix) {
			t.Errorf("runner-path attempt ran as %q; want the runner's reference", ref)
		}
	}
	if n := cloudRun.ExecutionCount(rb.prefix + "-small"); n != 0 {
		t.Errorf("the runner path started %d job executions; want none", n)
	}
	if n := cloudRun.ExecutionCount(jb.prefix + "-small"); n != 3 {
		t.Errorf("the job path started %d job executions; want 3", n)
	}
}

func maps3Equal(a, b chainResult) bool {
	for _, task := range []string{"a", "b", "c"} {
		if a.states[task] != b.states[task] || a.xcoms[task] != b.xcoms[task] {
			return false
		}
	}
	return true
}

func TestRunnerKilledMidTaskLosesTheAttemptAndItsTreeAndTheRetryRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	svc := b.gcpPath(t, true)
	dir := t.TempDir()
	// The first run leaves its shell's and its sleep's pids and sleeps; the retry succeeds.
	cmd := fmt.Sprintf(`echo run >> %[1]s/runs; if [ -f %[1]s/marker ]; then echo '{\"try\": 2}'; exit 0; fi; touch %[1]s/marker; sleep 300 & echo $$ $! > %[1]s/pids.tmp; mv %[1]s/pids.tmp %[1]s/pids; wait`, dir)
	b.deploy(t, `id: crash
owner: owner@example.com
tasks:
  - id: k
    type: shell
    timeout: 5m
    retries: 1
    retry_delay: 0s
    with: {command: "`+cmd+`"}
`)
	clk := &clock{t: time.Now()}
	eng := engine.New(b.st, b.q, engine.Config{Lease: 10 * time.Second}, clk.Now, b.log)
	x, err := runjobs.Open(b.ctx, runjobs.Config{Project: b.project, Region: "local", JobPrefix: b.prefix, Endpoint: cloudRun.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	eng.SetExecutor(x)
	r, err := eng.Trigger(b.ctx, "crash", nil, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	deadline := time.Now().Add(60 * time.Second)
	for pids == nil {
		if raw, err := os.ReadFile(filepath.Join(dir, "pids")); err == nil {
			for _, f := range strings.Fields(string(raw)) {
				p, _ := strconv.Atoi(f)
				pids = append(pids, p)
			}
		} else if time.Now().After(deadline) {
			t.Fatal("the task never started on the runner")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := b.ti(t, r, "k")
	if err := svc.Crash(); err != nil {
		t.Fatal(err)
	}
	// The task's tree dies with the runner (proctree), before any retry.
	for deadline = time.Now().Add(30 * time.Second); slices.ContainsFunc(pids, proctree.Alive); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("task processes %v outlive the killed runner", pids)
		}
	}
	clk.Add(time.Minute) // past the lease the dead runner no longer renews
	rep, err := eng.Tick(b.ctx)
	if err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: %d lost (%v %v); want the killed runner's attempt lost", rep.LostWorkers, err, rep.Errors)
	}
	a, err := b.st.GetAttempt(b.ctx, first.Ref())
	if err != nil || a.Rec.State != scheduler.AttemptLost {
		t.Fatalf("attempt %s is %s (%v); want lost", first.AttemptID, a.Rec.State, err)
	}
	clk.Add(time.Second)
	if _, err := eng.Tick(b.ctx); err != nil { // the retry is due: queued and published
		t.Fatal(err)
	}
	ti := b.waitTask(t, r, "k")
	if ti.State != scheduler.TaskSuccess || ti.TryNumber != 2 {
		t.Fatalf("k is %s on try %d (%s); want success on the retry", ti.State, ti.TryNumber, ti.Error)
	}
	runs, _ := os.ReadFile(filepath.Join(dir, "runs"))
	if got := strings.Count(string(runs), "run\n"); got != 2 {
		t.Fatalf("the task ran %d times; want 2 (the killed try and its retry)", got)
	}
	if n := svc.Instances(); n != 2 {
		t.Fatalf("%d runner instances; want 2 (the killed one and its replacement)", n)
	}
	if n := cloudRun.ExecutionCount(b.prefix + "-small"); n != 0 {
		t.Fatalf("%d job executions; want none", n)
	}
}

func TestRunnerRefusesRequestsWithoutTheInvokersToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keys := authtest.New(t)
	const audience, pusher = "https://runner.example.run.app", "push@p.iam.gserviceaccount.com"
	guard, err := auth.NewInvokers(b.ctx, auth.InvokersConfig{Audience: audience, Allowed: []string{pusher}}, b.log, keys.ClientOption())
	if err != nil {
		t.Fatal(err)
	}
	w := &taskrun.Worker{Engine: b.eng, Registry: tasktypes.Builtins(), Name: "runner-test", ExecutorRef: worker.RunnerRefPrefix + "test", Log: b.log, Getenv: b.getenv}
	h := guard.Middleware(runner.New(b.ctx, w, 1))
	// An attempt nobody queued: a runner that gets to it claims nothing and answers 204.
	ref := scheduler.AttemptRef{DagID: "nope", RunID: "r", TaskID: "t", TryNumber: 1, AttemptID: "a1"}
	data, _ := json.Marshal(scheduler.TaskMessage{AttemptRef: ref, Type: "shell", TimeoutSeconds: 60})
	body := fmt.Sprintf(`{"message":{"data":%q,"messageId":"1"},"subscription":"s"}`, base64.StdEncoding.EncodeToString(data))
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"forged", keys.ForgedIDToken(authtest.ServiceAccount(audience, pusher)), http.StatusUnauthorized},
		{"other audience", keys.IDToken(authtest.ServiceAccount("https://elsewhere", pusher)), http.StatusUnauthorized},
		{"other account", keys.IDToken(authtest.ServiceAccount(audience, "someone@p.iam.gserviceaccount.com")), http.StatusForbidden},
		{"the pusher", keys.IDToken(authtest.ServiceAccount(audience, pusher)), http.StatusNoContent},
	} {
		r := rawRequest(body, "Content-Type", "application/json")
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		if got := serve(h, r); got != c.want {
			t.Errorf("%s → %d; want %d", c.name, got, c.want)
		}
	}
	// Garbage from the pusher is acknowledged (no redelivery helps) and runs nothing.
	r := rawRequest(`{"message":{"data":"bm90IGFuIGF0dGVtcHQ="}}`, "Authorization", "Bearer "+keys.IDToken(authtest.ServiceAccount(audience, pusher)))
	if got := serve(h, r); got != http.StatusNoContent || !strings.Contains(b.logs.String(), "can never be run") {
		t.Errorf("garbage → %d; want 204 and a log line saying why", got)
	}
}

// BenchmarkChain measures the GCP path on the local stand-ins: a chain of five `true` shell
// tasks, from the trigger to the last task's success, through the runner and through jobs
// (a subprocess per attempt on the Cloud Run stand-in). Run with -benchtime=5x: it reports the
// median chain and per-task times of the iterations, after one untimed warm-up run.
// docs/execution.md has the figures.
func BenchmarkChain(b *testing.B) {
	for _, path := range []struct {
		name   string
		runner bool
	}{{"runner", true}, {"job", false}} {
		b.Run(path.name, func(b *testing.B) {
			bn := setup(b)
			bn.gcpPath(b, path.runner)
			src := "id: chain\nowner: owner@example.com\ntasks:\n"
			for i := range 5 {
				src += fmt.Sprintf("  - {id: t%d, type: shell, timeout: 2m, with: {command: \"true\"}", i)
				if i > 0 {
					src += fmt.Sprintf(", needs: [t%d]", i-1)
				}
				src += "}\n"
			}
			bn.deploy(b, src)
			at := time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC)
			runOnce := func(i int) time.Duration {
				start := time.Now()
				r := bn.trigger(b, "chain", at.Add(time.Duration(i)*time.Hour))
				if ti := bn.waitTask(b, r, "t4"); ti.State != scheduler.TaskSuccess {
					b.Fatalf("t4 is %s: %s", ti.State, ti.Error)
				}
				return time.Since(start)
			}
			runOnce(0) // warm-up: clients, caches, the first process
			var times []time.Duration
			b.ResetTimer()
			for i := range b.N {
				times = append(times, runOnce(i+1))
			}
			b.StopTimer()
			slices.Sort(times)
			med := times[len(times)/2]
			b.ReportMetric(float64(med.Milliseconds()), "ms/chain-median")
			b.ReportMetric(float64(med.Milliseconds())/5, "ms/task-median")
		})
	}
}

func TestRedeliveredTaskMessagePublishesToTheRunnerOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The runner topic with a pull subscription in place of the runner: what Dispatch published.
	c, err := pubsub.NewClient(b.ctx, b.project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TopicAdminClient.CreateTopic(b.ctx, &pubsubpb.Topic{Name: "projects/" + b.project + "/topics/" + runnerTopic}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(b.ctx, &pubsubpb.Subscription{
		Name: "projects/" + b.project + "/subscriptions/runner-pull", Topic: "projects/" + b.project + "/topics/" + runnerTopic,
	}); err != nil {
		t.Fatal(err)
	}
	b.env[runjobs.EnvRunnerTopic] = runnerTopic
	h := b.handler(t, functions.TargetDispatch)
	b.deploy(t, shellDAG)
	r := b.trigger(t, "jobs", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	msg := b.message(t, r, "hello", "shell", "", 5*time.Minute)
	for i := range 2 {
		if code := serve(h, request(shapePush, msg)); code != http.StatusNoContent {
			t.Fatalf("delivery %d → %d; want 204", i+1, code)
		}
	}
	var got []scheduler.TaskMessage
	for range 20 {
		n, err := b.q.PullOnce(b.ctx, "runner-pull", 10, func(_ context.Context, data []byte) error {
			m, err := scheduler.DecodeTaskMessage(data)
			got = append(got, m)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && len(got) > 0 {
			break
		}
	}
	ti := b.ti(t, r, "hello")
	if len(got) != 1 || got[0].AttemptID != ti.AttemptID || got[0].Type != "shell" {
		t.Fatalf("the runner topic got %+v; want the attempt's task message once", got)
	}
	if n := cloudRun.ExecutionCount(b.prefix + "-small"); n != 0 {
		t.Fatalf("%d job executions; want none (the attempt fits the runner)", n)
	}
	d, err := b.st.GetDispatch(b.ctx, ti.AttemptID)
	if err != nil || !strings.HasPrefix(d.Rec.Execution, runjobs.RunnerRefPrefix) || d.Rec.Starts != 1 {
		t.Fatalf("dispatch record %+v (%v); want one start on the runner", d.Rec, err)
	}
}
