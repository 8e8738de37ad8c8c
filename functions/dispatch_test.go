package functions_test

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/functions"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
)

const shellDAG = `id: jobs
owner: owner@example.com
tasks:
  - id: hello
    type: shell
    timeout: 5m
    with: {command: "echo '{\"ok\": true}'"}
`

// executions lists the executions of one of the test's worker jobs on the stand-in.
func (b *bundle) executions(t *testing.T, class string) []string {
	t.Helper()
	c, err := run.NewExecutionsClient(b.ctx, option.WithEndpoint(cloudRun.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []string
	it := c.ListExecutions(b.ctx, &runpb.ListExecutionsRequest{Parent: fmt.Sprintf("projects/%s/locations/local/jobs/%s-%s", b.project, b.prefix, class)})
	for {
		e, err := it.Next()
		if err == iterator.Done {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.GetName())
	}
}

// checkSucceededOnItsExecution checks a container task's outcome and where it ran: the
// attempt succeeded on the execution Dispatch started, whose name is on the dispatch record
// (full) and on the attempt as the worker read it from CLOUD_RUN_EXECUTION.
func (b *bundle) checkSucceededOnItsExecution(t *testing.T, r *scheduler.Run, task string) string {
	t.Helper()
	ti := b.waitTask(t, r, task)
	if ti.State != scheduler.TaskSuccess {
		t.Fatalf("%s is %s (%s); want success", task, ti.State, ti.Error)
	}
	a, err := b.st.GetAttempt(b.ctx, ti.Ref())
	if err != nil {
		t.Fatal(err)
	}
	d, err := b.st.GetDispatch(b.ctx, ti.AttemptID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("projects/%s/locations/local/jobs/%s-small/executions/", b.project, b.prefix)
	if !strings.HasPrefix(d.Rec.Execution, want) {
		t.Fatalf("dispatch record names %q; want an execution of %s", d.Rec.Execution, want)
	}
	if a.Rec.ExecutorRef != path.Base(d.Rec.Execution) || a.Rec.State != scheduler.AttemptSuccess {
		t.Fatalf("attempt %s ran on %q; want success on %s", a.Rec.State, a.Rec.ExecutorRef, d.Rec.Execution)
	}
	return d.Rec.Execution
}

func TestDispatchStartsAJobExecutionThatRunsTheWorker(t *testing.T) {
	t.Parallel()
	for i, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.deploy(t, shellDAG)
			h := b.handler(t, functions.TargetDispatch)
			r := b.trigger(t, "jobs", time.Date(2025, 1, 10, 0, i, 0, 0, time.UTC))
			msg := b.message(t, r, "hello", "shell", "", 5*time.Minute)
			if code := serve(h, request(shape, msg)); code != http.StatusNoContent {
				t.Fatalf("dispatch → %d; want 204", code)
			}
			exec := b.checkSucceededOnItsExecution(t, r, "hello")
			if xcom, err := b.eng.XCom(b.ctx, r.DagID, r.RunID, "hello"); err != nil || !strings.Contains(string(xcom), `"ok"`) {
				t.Fatalf("xcom %s (%v); want the shell's last line", xcom, err)
			}
			if got := b.executions(t, "small"); len(got) != 1 || got[0] != exec {
				t.Fatalf("executions %v; want only %s", got, exec)
			}
		})
	}
}

func TestRedeliveredTaskMessageStartsNoSecondExecution(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, shellDAG)
	h := b.handler(t, functions.TargetDispatch)
	r := b.trigger(t, "jobs", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	msg := b.message(t, r, "hello", "shell", "", 5*time.Minute)
	// Pub/Sub delivers at least once: the same message three times, at once and after.
	for range 3 {
		if code := serve(h, request(shapePush, msg)); code != http.StatusNoContent {
			t.Fatalf("dispatch → %d; want 204", code)
		}
	}
	exec := b.checkSucceededOnItsExecution(t, r, "hello")
	if code := serve(h, request(shapePush, msg)); code != http.StatusNoContent {
		t.Fatalf("late redelivery → %d; want 204", code)
	}
	if got := b.executions(t, "small"); len(got) != 1 || got[0] != exec {
		t.Fatalf("executions %v; want only %s", got, exec)
	}
	if d, _ := b.st.GetDispatch(b.ctx, b.ti(t, r, "hello").AttemptID); d.Rec.Starts != 1 {
		t.Fatalf("dispatch record counts %d starts; want 1", d.Rec.Starts)
	}
}

func TestJobThatCannotStartFailsTheTaskWithTheReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, `id: nojob
owner: owner@example.com
tasks:
  - {id: big, type: shell, resources: huge, with: {command: "true"}}
`)
	h := b.handler(t, functions.TargetDispatch)
	r := b.trigger(t, "nojob", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	msg := b.message(t, r, "big", "shell", "huge", 0)
	if code := serve(h, request(shapePush, msg)); code != http.StatusNoContent {
		t.Fatalf("dispatch → %d; want 204 (acknowledged: the task failed)", code)
	}
	ti := b.ti(t, r, "big")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "could not start the worker job") ||
		!strings.Contains(ti.Error, "NotFound") || !strings.Contains(ti.Error, b.prefix+"-huge") {
		t.Fatalf("big is %s: %q; want failed with the job and the NotFound", ti.State, ti.Error)
	}
	if run, _ := b.st.GetRun(b.ctx, r.DagID, r.RunID); run.Rec.State != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", run.Rec.State)
	}
}

func TestJobThatCannotStartRetriesUnderTheRetryPolicy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, `id: nojob
owner: owner@example.com
tasks:
  - {id: big, type: shell, resources: huge, retries: 1, retry_delay: 0s, with: {command: "true"}}
`)
	h := b.handler(t, functions.TargetDispatch)
	r := b.trigger(t, "nojob", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	if code := serve(h, request(shapePush, b.message(t, r, "big", "shell", "huge", 0))); code != http.StatusNoContent {
		t.Fatalf("dispatch → %d", code)
	}
	if ti := b.ti(t, r, "big"); ti.State != scheduler.TaskQueued || ti.TryNumber != 2 {
		t.Fatalf("big is %s try %d; want try 2 queued (retries: 1, no delay)", ti.State, ti.TryNumber)
	}
}

func TestUnreachableRunAPIAsksForARedelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, shellDAG)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close()
	good := b.handler(t, functions.TargetDispatch)
	b.env[runemu.EnvVar] = down
	bad := b.handler(t, functions.TargetDispatch)
	r := b.trigger(t, "jobs", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	msg := b.message(t, r, "hello", "shell", "", 5*time.Minute)
	if code := serve(bad, request(shapePush, msg)); code != http.StatusInternalServerError {
		t.Fatalf("Run API down → %d; want 500 (redelivered)", code)
	}
	if ti := b.ti(t, r, "hello"); ti.State != scheduler.TaskQueued {
		t.Fatalf("hello is %s; want still queued", ti.State)
	}
	// The redelivery, once the API answers, starts it at once (the failed start let go).
	if code := serve(good, request(shapePush, msg)); code != http.StatusNoContent {
		t.Fatalf("redelivery → %d; want 204", code)
	}
	b.checkSucceededOnItsExecution(t, r, "hello")
}

func TestLostWorkerCheckAsksTheRunAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cloudRun.SetJob(b.prefix+"-sleeper", runemu.JobSpec{Command: []string{"sleep", "600"}})
	clk := &clock{t: time.Date(2025, 1, 10, 0, 30, 0, 0, time.UTC)}
	eng := engine.New(b.st, b.q, engine.Config{Lease: time.Minute}, clk.Now, b.log)
	x, err := runjobs.Open(b.ctx, runjobs.Config{Project: b.project, Region: "local", JobPrefix: b.prefix, Endpoint: cloudRun.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	eng.SetExecutor(x)
	b.deploy(t, shellDAG)
	r, err := eng.Trigger(b.ctx, "jobs", nil, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	ti := b.ti(t, r, "hello")
	ref := scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: "hello", TryNumber: ti.TryNumber, AttemptID: ti.AttemptID}
	exec, err := x.Start(b.ctx, "sleeper", ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The claim as a worker in that execution makes it: the short name from CLOUD_RUN_EXECUTION.
	if _, err := eng.Claim(b.ctx, ref, engine.Worker{Name: "w", ExecutorRef: path.Base(exec)}); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute) // the lease expires, the execution still runs
	rep, err := eng.Tick(b.ctx)
	if err != nil || rep.LostWorkers != 0 {
		t.Fatalf("tick: %d lost (%v %v); want the running execution's attempt kept", rep.LostWorkers, err, rep.Errors)
	}
	if a, _ := b.st.GetAttempt(b.ctx, ref); a.Rec.State != scheduler.AttemptRunning {
		t.Fatalf("attempt is %s; want running", a.Rec.State)
	}
	if err := x.Cancel(b.ctx, exec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for alive := true; alive; {
		if alive, err = x.Alive(b.ctx, exec); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled execution still runs")
		}
		time.Sleep(20 * time.Millisecond)
	}
	clk.Add(2 * time.Minute)
	rep, err = eng.Tick(b.ctx)
	if err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: %d lost (%v %v); want the attempt of the cancelled execution lost", rep.LostWorkers, err, rep.Errors)
	}
	a, _ := b.st.GetAttempt(b.ctx, ref)
	if a.Rec.State != scheduler.AttemptLost || !strings.Contains(a.Rec.Error, path.Base(exec)) {
		t.Fatalf("attempt is %s (%s); want lost, naming its execution", a.Rec.State, a.Rec.Error)
	}
	if ti := b.ti(t, r, "hello"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "lost worker") {
		t.Fatalf("hello is %s (%s); want failed as a lost worker (no retries)", ti.State, ti.Error)
	}
}

func TestInlineTypesRunInTheFunction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"rows": 3}`)
	}))
	defer api.Close()
	b.deploy(t, fmt.Sprintf(`id: inline
owner: owner@example.com
tasks:
  - {id: get, type: http, with: {url: %q}}
`, api.URL))
	h := b.handler(t, functions.TargetDispatch)
	r := b.trigger(t, "inline", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	msg := b.message(t, r, "get", "http", "", 0)
	if code := serve(h, request(shapeStructured, msg)); code != http.StatusNoContent {
		t.Fatalf("dispatch → %d", code)
	}
	ti := b.ti(t, r, "get") // recorded before the answer
	if ti.State != scheduler.TaskSuccess {
		t.Fatalf("get is %s (%s); want success", ti.State, ti.Error)
	}
	a, _ := b.st.GetAttempt(b.ctx, ti.Ref())
	if !strings.HasPrefix(a.Rec.ExecutorRef, "function:") {
		t.Fatalf("inline attempt's executor_ref %q; want the function's", a.Rec.ExecutorRef)
	}
	if len(b.executions(t, "small")) != 0 {
		t.Fatal("an inline type started a job execution")
	}
	if code := serve(h, request(shapePush, msg)); code != http.StatusNoContent {
		t.Fatalf("redelivery → %d; want 204 (dropped as a duplicate)", code)
	}
}

func TestAdvanceAndAlertsOverAPushEnvelope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, `id: chain
owner: owner@example.com
tasks:
  - {id: a, type: shell, with: {command: "true"}}
  - {id: b, type: shell, needs: [a], with: {command: "true"}}
`)
	advance := b.handler(t, functions.TargetAdvance)
	alerts := b.handler(t, functions.TargetAlerts)
	r := b.trigger(t, "chain", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	// a's worker recorded its success and died before its fast-follow.
	v, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	f := fsstore.StateFields(scheduler.TaskSuccess)
	f["ended_at"] = time.Now()
	if _, err := b.st.UpdateTaskInstanceIf(b.ctx, &v.Rec, v.UpdateTime, f); err != nil {
		t.Fatal(err)
	}
	ev := fmt.Appendf(nil, `{"dag_id":%q,"run_id":%q,"task_id":"a","try_number":1,"attempt_id":%q,"state":"success"}`,
		r.DagID, r.RunID, v.Rec.AttemptID)
	if code := serve(advance, request(shapePush, ev)); code != http.StatusNoContent {
		t.Fatalf("advance → %d", code)
	}
	if ti := b.ti(t, r, "b"); ti.State != scheduler.TaskQueued {
		t.Fatalf("b is %s after Advance; want queued", ti.State)
	}
	if code := serve(alerts, request(shapePush, ev)); code != http.StatusNoContent {
		t.Fatalf("alerts → %d (a DAG without alerts: nothing to post)", code)
	}
	unknown := []byte(`{"dag_id":"nope","run_id":"manual__x","task_id":"a","try_number":1,"attempt_id":"x","state":"success"}`)
	if code := serve(advance, request(shapePush, unknown)); code != http.StatusNoContent {
		t.Fatalf("advance of an unknown run → %d; want 204 (never handled)", code)
	}
}

func TestMalformedPayloadsAreAcknowledgedLoggedAndWriteNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x, err := runjobs.Open(b.ctx, runjobs.Config{Project: b.project, Region: "local", JobPrefix: b.prefix, Endpoint: cloudRun.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	reg := tasktypes.Builtins()
	d := &functions.Dispatcher{Engine: b.eng, Registry: reg, Jobs: x, Log: b.log,
		Worker: &taskrun.Worker{Engine: b.eng, Registry: reg, Name: "test", Log: b.log}}
	h := functions.Push(functions.TargetDispatch, d.Handle, b.log)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	stale := `{"dag_id":"d","run_id":"manual__x","task_id":"t","try_number":1,"attempt_id":"a1","type":"shell"}`
	cases := []struct {
		name string
		req  *http.Request
	}{
		{"not JSON", rawRequest("not json", "Content-Type", "application/json")},
		{"envelope without data", rawRequest(`{"message":{"messageId":"1"}}`)},
		{"data not base64", rawRequest(`{"message":{"data":"%%%"}}`)},
		{"task message not JSON", rawRequest(`{"message":{"data":"` + b64("{nope") + `"}}`)},
		{"task message without attempt", rawRequest(`{"message":{"data":"` + b64(`{"dag_id":"d","type":"shell"}`) + `"}}`)},
		{"task message without type", rawRequest(`{"message":{"data":"` + b64(`{"dag_id":"d","run_id":"r","task_id":"t","try_number":1,"attempt_id":"a"}`) + `"}}`)},
		{"structured CloudEvent without specversion", rawRequest(`{"id":"1","data":{}}`, "Content-Type", "application/cloudevents+json")},
		{"structured CloudEvent not JSON", rawRequest(`{`, "Content-Type", "application/cloudevents+json")},
		{"binary CloudEvent with a bad body", rawRequest(`[1,2]`, "Ce-Specversion", "1.0", "Content-Type", "application/json")},
		{"task of no task instance", request(shapeBinary, []byte(stale))},
	}
	for _, c := range cases {
		if code := serve(h, c.req); code != http.StatusNoContent {
			t.Errorf("%s → %d; want 204 (acknowledged, never redelivered)", c.name, code)
		}
	}
	if _, writes := b.st.Counts(); writes != 0 {
		t.Fatalf("malformed messages wrote %d documents; want none", writes)
	}
	if n := strings.Count(b.logs.String(), "dropping a message that can never be handled"); n != len(cases)-1 {
		t.Fatalf("logged %d drops; want %d (the stale one is no error)\n%s", n, len(cases)-1, b.logs.String())
	}
	if len(b.executions(t, "small")) != 0 {
		t.Fatal("a malformed message started an execution")
	}
}

func TestPubSubEmulatorPushesToDispatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deploy(t, shellDAG)
	srv := httptest.NewServer(b.handler(t, functions.TargetDispatch))
	defer srv.Close()
	c, err := pubsub.NewClient(b.ctx, b.project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.SubscriptionAdminClient.CreateSubscription(b.ctx, &pubsubpb.Subscription{
		Name:       "projects/" + b.project + "/subscriptions/dispatch-push",
		Topic:      "projects/" + b.project + "/topics/" + psqueue.TopicTasks,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: srv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The engine queues the task and publishes its message; the emulator pushes it.
	r := b.trigger(t, "jobs", time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC))
	b.checkSucceededOnItsExecution(t, r, "hello")
}
