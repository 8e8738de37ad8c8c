package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
)

// pokes registers test.poke: a sensor whose condition is met once ready[task] is set.
func pokes(b *bundle) (ready func(task string), count func(task string) int) {
	var mu sync.Mutex
	met, n := map[string]bool{}, map[string]int{}
	b.worker.Registry.Add(taskrun.Type{Name: "test.poke", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		mu.Lock()
		defer mu.Unlock()
		n[tc.Ref.TaskID]++
		if met[tc.Ref.TaskID] {
			return engine.Result{State: scheduler.AttemptSuccess}
		}
		return engine.Result{State: scheduler.AttemptReschedule}
	}})
	return func(task string) { mu.Lock(); met[task] = true; mu.Unlock() },
		func(task string) int { mu.Lock(); defer mu.Unlock(); return n[task] }
}

func (b *bundle) tick(t *testing.T) engine.TickReport {
	t.Helper()
	rep, err := b.eng.Tick(b.ctx)
	if err != nil || len(rep.Errors) > 0 {
		t.Fatalf("tick: %v %v", err, rep.Errors)
	}
	return rep
}

func (b *bundle) state(t *testing.T, r *scheduler.Run, task string) scheduler.TaskState {
	t.Helper()
	return b.ti(t, r, task).State
}

func TestSensorWaitsInRescheduleWithoutUsingTries(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	ready, count := pokes(b)
	b.deploy(t, `id: waits
owner: owner@example.com
tasks:
  - {id: a, type: test.poke, poke_interval: 5m, sensor_timeout: 1h, retries: 1}
  - {id: b, type: test.ok, needs: [a]}
`)
	r := b.trigger(t, "waits")
	first := b.ref(t, r, "a")
	b.execute(t, r, "a")
	ti := b.ti(t, r, "a")
	if ti.State != scheduler.TaskUpForReschedule || ti.TryNumber != 1 || ti.CActive != 0 {
		t.Fatalf("after a poke that is not met: %s try %d active %d; want up_for_reschedule, try 1, no slot", ti.State, ti.TryNumber, ti.CActive)
	}
	if rep := b.tick(t); rep.Poked != 0 {
		t.Fatalf("the tick poked before poke_interval passed")
	}
	b.clock.Add(5 * time.Minute)
	if rep := b.tick(t); rep.Poked != 1 {
		t.Fatalf("tick after poke_interval poked %d sensors; want 1", rep.Poked)
	}
	second := b.ref(t, r, "a")
	if second.TryNumber != 1 || second.AttemptID == first.AttemptID {
		t.Fatalf("second poke: try %d attempt %s; want try 1 again with a new attempt", second.TryNumber, second.AttemptID)
	}
	b.execute(t, r, "a")
	ready("a")
	b.clock.Add(5 * time.Minute)
	b.tick(t)
	b.execute(t, r, "a")
	if got := b.state(t, r, "a"); got != scheduler.TaskSuccess || count("a") != 3 {
		t.Fatalf("after the condition is met: %s after %d pokes; want success after 3", got, count("a"))
	}
	if ti := b.ti(t, r, "a"); ti.TryNumber != 1 {
		t.Fatalf("try_number = %d after 3 pokes; pokes must not use up tries", ti.TryNumber)
	}
	if got := b.state(t, r, "b"); got != scheduler.TaskQueued {
		t.Fatalf("downstream of the sensor is %s; want queued at once", got)
	}
	atts, err := b.store.ListAttempts(b.ctx, r.DagID, r.RunID, "a")
	if err != nil || len(atts) != 3 || atts[0].Rec.State != scheduler.AttemptReschedule {
		t.Fatalf("attempts = %d (%v); want 3, the first up_for_reschedule", len(atts), err)
	}
}

func TestSensorTimeoutFailsWithoutRetriesAndSoftFailSkips(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	pokes(b)
	b.deploy(t, `id: gives_up
owner: owner@example.com
tasks:
  - {id: a, type: test.poke, poke_interval: 20m, sensor_timeout: 30m, retries: 3}
  - {id: b, type: test.poke, poke_interval: 20m, sensor_timeout: 30m, soft_fail: true}
  - {id: c, type: test.ok, needs: [b]}
`)
	r := b.trigger(t, "gives_up")
	b.execute(t, r, "a")
	b.execute(t, r, "b")
	due := b.ti(t, r, "a").TickDueAt
	if due == nil || !due.Equal(b.clock.Now().Add(20*time.Minute)) {
		t.Fatalf("next poke at %v; want poke_interval (20m) from now", due)
	}
	b.clock.Add(20 * time.Minute)
	b.tick(t)
	b.execute(t, r, "a")
	b.execute(t, r, "b")
	due = b.ti(t, r, "a").TickDueAt
	if due == nil || !due.Equal(b.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("next poke at %v; want the sensor_timeout deadline, 10m from now", due)
	}
	b.clock.Add(10 * time.Minute)
	b.tick(t)
	b.execute(t, r, "a")
	b.execute(t, r, "b")
	a := b.ti(t, r, "a")
	if a.State != scheduler.TaskFailed || !strings.Contains(a.Error, "sensor_timeout of 30m0s passed") {
		t.Fatalf("timed-out sensor: %s %q; want failed with the timeout, no retry", a.State, a.Error)
	}
	if got, c := b.state(t, r, "b"), b.state(t, r, "c"); got != scheduler.TaskSkipped || c != scheduler.TaskSkipped {
		t.Fatalf("soft_fail sensor %s and its downstream %s; want both skipped", got, c)
	}
}

func TestBranchRunsTheChosenPathAndSkipsTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: branchy
owner: owner@example.com
params: {rows: 5}
tasks:
  - {id: a, type: test.ok}
  - id: decide
    type: branch
    needs: [a]
    with: {choose: '{{ if gt .params.rows 0 }}load{{ else }}skip_load{{ end }}'}
  - {id: load, type: test.ok, needs: [decide]}
  - {id: skip_load, type: test.ok, needs: [decide]}
  - {id: after_skip, type: test.ok, needs: [skip_load]}
  - {id: report, type: test.ok, needs: [decide, load]}
  - {id: join, type: test.ok, needs: [load, skip_load], trigger_rule: none_failed_min_one_success}
`)
	r := b.trigger(t, "branchy")
	b.execute(t, r, "a")
	b.execute(t, r, "decide")
	for task, want := range map[string]scheduler.TaskState{
		"decide": scheduler.TaskSuccess, "load": scheduler.TaskQueued, "skip_load": scheduler.TaskSkipped,
		"after_skip": scheduler.TaskSkipped, "report": scheduler.TaskNone, "join": scheduler.TaskNone,
	} {
		if got := b.state(t, r, task); got != want {
			t.Errorf("%s is %s; want %s", task, got, want)
		}
	}
	b.execute(t, r, "load")
	b.execute(t, r, "report") // downstream of both the branch and the chosen task: it runs
	b.execute(t, r, "join")
	if got := b.runState(t, r); got != scheduler.RunSuccess {
		tis, _ := b.store.ListTaskInstances(b.ctx, r.DagID, r.RunID)
		for _, ti := range tis {
			t.Logf("%s %s %q", ti.Rec.TaskID, ti.Rec.State, ti.Rec.Error)
		}
		t.Fatalf("run %s; want success", got)
	}
	raw, err := b.eng.XCom(b.ctx, r.DagID, r.RunID, "decide")
	if err != nil || string(raw) != `["load"]` {
		t.Fatalf("branch XCom = %s (%v); want [\"load\"]", raw, err)
	}
}

func TestBranchChoosingATaskThatIsNotDownstreamFails(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: bad_branch
owner: owner@example.com
tasks:
  - {id: decide, type: branch, retries: 2, with: {choose: 'lod'}}
  - {id: load, type: test.ok, needs: [decide]}
  - {id: skip_load, type: test.ok, needs: [decide]}
`)
	r := b.trigger(t, "bad_branch")
	b.execute(t, r, "decide")
	ti := b.ti(t, r, "decide")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, `chose "lod"`) || !strings.Contains(ti.Error, "load, skip_load") {
		t.Fatalf("decide: %s %q; want failed (no retry) naming the valid ids", ti.State, ti.Error)
	}
}

// items registers test.item, which records its rendered `x` and returns it as XCom.
func items(b *bundle) func() []string {
	var mu sync.Mutex
	var seen []string
	b.worker.Registry.Add(taskrun.Type{Name: "test.item", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		x, _ := tc.Args["x"].(string)
		mu.Lock()
		seen = append(seen, x)
		mu.Unlock()
		if strings.HasPrefix(x, "failing-1") {
			return engine.Result{State: scheduler.AttemptFailed, Error: "bad item " + x}
		}
		b, _ := json.Marshal(x)
		return engine.Result{State: scheduler.AttemptSuccess, XCom: b}
	}})
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func TestForEachFansOutOverAnUpstreamXCom(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	seen := items(b)
	b.worker.Registry.Add(taskrun.Type{Name: "test.list", Inline: true, Run: func(ctx context.Context, tc *taskrun.Context) engine.Result {
		return engine.Result{State: scheduler.AttemptSuccess, XCom: json.RawMessage(`["orders", "refunds", "sessions"]`)}
	}})
	b.deploy(t, `id: fan
owner: owner@example.com
tasks:
  - {id: list_tables, type: test.list}
  - id: copy
    type: test.item
    needs: [list_tables]
    for_each: '{{ xcom "list_tables" }}'
    with: {x: '{{ .index }}:{{ .item }}'}
  - {id: done, type: test.ok, needs: [copy]}
`)
	r := b.trigger(t, "fan")
	b.execute(t, r, "list_tables")
	b.execute(t, r, "copy") // the expansion
	if ti := b.ti(t, r, "copy"); ti.State != scheduler.TaskRunning || ti.MapCount == nil || *ti.MapCount != 3 || ti.CActive != 0 {
		t.Fatalf("expanded task: %+v; want running with map_count 3, holding no slot", ti)
	}
	for i := range 3 {
		if got := b.state(t, r, scheduler.MapChildID("copy", i)); got != scheduler.TaskQueued {
			t.Fatalf("copy[%d] is %s; want queued", i, got)
		}
	}
	b.execute(t, r, "copy[0]")
	b.execute(t, r, "copy[2]")
	if got := b.state(t, r, "done"); got != scheduler.TaskNone {
		t.Fatalf("done is %s with one instance left; want none", got)
	}
	b.execute(t, r, "copy[1]")
	if got := b.state(t, r, "copy"); got != scheduler.TaskSuccess {
		t.Fatalf("copy is %s after all instances succeeded", got)
	}
	b.execute(t, r, "done")
	got := seen()
	if len(got) != 3 || got[0] != "0:orders" || got[1] != "2:sessions" || got[2] != "1:refunds" {
		t.Fatalf("instances rendered %v; want .index:.item per instance", got)
	}
	raw, err := b.eng.XCom(b.ctx, r.DagID, r.RunID, "copy")
	if err != nil || string(raw) != `["0:orders","1:refunds","2:sessions"]` {
		t.Fatalf("xcom of the fanned-out task = %s (%v); want its instances' values in order", raw, err)
	}
	if got := b.runState(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
}

func TestForEachInstanceFailureFailsTheTaskAndClearingItReruns(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	items(b)
	b.deploy(t, `id: fan_fail
owner: owner@example.com
params: {tables: [a, failing]}
tasks:
  - id: copy
    type: test.item
    for_each: '{{ .params.tables }}'
    with: {x: '{{ .item }}-{{ .ti.try_number }}'}
  - {id: done, type: test.ok, needs: [copy]}
`)
	r := b.trigger(t, "fan_fail")
	b.execute(t, r, "copy")
	b.execute(t, r, "copy[0]")
	b.execute(t, r, "copy[1]") // "failing-1" fails
	ti := b.ti(t, r, "copy")
	if ti.State != scheduler.TaskFailed || ti.Error != "1 of 2 instances failed" {
		t.Fatalf("copy: %s %q; want failed, 1 of 2 instances failed", ti.State, ti.Error)
	}
	if got := b.state(t, r, "done"); got != scheduler.TaskUpstreamFailed {
		t.Fatalf("done is %s; want upstream_failed", got)
	}
	if got := b.runState(t, r); got != scheduler.RunFailed {
		t.Fatalf("run %s; want failed", got)
	}
	// Clear the one failed instance with its downstream: it runs again (try 2), the task
	// re-opens and settles, and done runs.
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"copy[1]"}, true, false); err != nil {
		t.Fatal(err)
	}
	if got, d := b.state(t, r, "copy"), b.state(t, r, "done"); got != scheduler.TaskRunning || d != scheduler.TaskNone {
		t.Fatalf("after clearing copy[1]: copy %s, done %s; want running and none", got, d)
	}
	b.execute(t, r, "copy[1]")
	if got := b.state(t, r, "copy"); got != scheduler.TaskSuccess {
		t.Fatalf("copy is %s after its failed instance succeeded on try 2", got)
	}
	b.execute(t, r, "done")
	if got := b.runState(t, r); got != scheduler.RunSuccess {
		t.Fatalf("run %s; want success", got)
	}
	// Clearing the whole task drops its instances: it expands again.
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"copy"}, true, false); err != nil {
		t.Fatal(err)
	}
	if kids, _ := b.store.MapInstances(b.ctx, r.Key(), "copy"); len(kids) != 0 {
		t.Fatalf("cleared task kept %d instances", len(kids))
	}
	b.execute(t, r, "copy")
	if kids, _ := b.store.MapInstances(b.ctx, r.Key(), "copy"); len(kids) != 2 {
		t.Fatalf("re-expanded into %d instances; want 2", len(kids))
	}
}

func TestForEachBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	items(b)
	b.deploy(t, `id: fan_bad
owner: owner@example.com
params: {one: abc, none: []}
tasks:
  - {id: notalist, type: test.item, for_each: '{{ .params.one }}', with: {x: '{{ .item }}'}}
  - {id: empty, type: test.item, for_each: '{{ .params.none }}', with: {x: '{{ .item }}'}}
  - {id: after_empty, type: test.ok, needs: [empty]}
`)
	r := b.trigger(t, "fan_bad")
	b.execute(t, r, "notalist")
	b.execute(t, r, "empty")
	ti := b.ti(t, r, "notalist")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "for_each of task notalist must be a list") {
		t.Fatalf("for_each over a string: %s %q; want failed saying it must be a list", ti.State, ti.Error)
	}
	if got, after := b.state(t, r, "empty"), b.state(t, r, "after_empty"); got != scheduler.TaskSkipped || after != scheduler.TaskSkipped {
		t.Fatalf("empty for_each %s, downstream %s; want both skipped", got, after)
	}
}

func TestForEachOverTheLimitFails(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	items(b)
	list := make([]string, scheduler.MaxMapLength+1)
	for i := range list {
		list[i] = "x"
	}
	js, _ := json.Marshal(list)
	b.deploy(t, `id: fan_big
owner: owner@example.com
params: {many: `+string(js)+`}
tasks:
  - {id: copy, type: test.item, for_each: '{{ .params.many }}', with: {x: '{{ .item }}'}}
`)
	r := b.trigger(t, "fan_big")
	b.execute(t, r, "copy")
	ti := b.ti(t, r, "copy")
	if ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "1025 items is over the limit of 1024") {
		t.Fatalf("for_each over 1025 items: %s %q; want failed naming the limit", ti.State, ti.Error)
	}
}

func TestDagTriggerWaitsForTheRunItStarted(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: marts
owner: owner@example.com
params: {source: none}
tasks:
  - {id: a, type: test.ok}
`)
	b.deploy(t, `id: loads
owner: owner@example.com
tasks:
  - id: kick
    type: dag.trigger
    poke_interval: 1m
    with: {dag_id: marts, conf: {source: '{{ .dag.dag_id }}'}, wait_for_completion: true}
  - {id: missing, type: dag.trigger, with: {dag_id: no_such_dag}}
`)
	r := b.trigger(t, "loads")
	b.execute(t, r, "kick")
	if got := b.state(t, r, "kick"); got != scheduler.TaskUpForReschedule {
		t.Fatalf("kick is %s while marts runs; want up_for_reschedule", got)
	}
	runs, err := b.store.ListRuns(b.ctx, "marts", 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("marts has %d runs (%v); want the one triggered", len(runs), err)
	}
	m := runs[0].Rec
	if !m.LogicalDate.Equal(r.LogicalDate) || m.Conf != `{"source":"loads"}` {
		t.Fatalf("triggered run: logical %v conf %s; want the triggering run's date and the rendered conf", m.LogicalDate, m.Conf)
	}
	// A second poke finds the same run rather than triggering another.
	b.clock.Add(time.Minute)
	b.tick(t)
	b.execute(t, r, "kick")
	b.execute(t, &m, "a")
	b.clock.Add(time.Minute)
	b.tick(t)
	b.execute(t, r, "kick")
	if got := b.state(t, r, "kick"); got != scheduler.TaskSuccess {
		t.Fatalf("kick is %s after marts succeeded; want success", got)
	}
	if runs, _ := b.store.ListRuns(b.ctx, "marts", 10); len(runs) != 1 {
		t.Fatalf("marts has %d runs after 3 pokes; want 1", len(runs))
	}
	b.execute(t, r, "missing")
	if ti := b.ti(t, r, "missing"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, `no DAG "no_such_dag" is deployed`) {
		t.Fatalf("triggering a missing DAG: %s %q", ti.State, ti.Error)
	}
}

func TestDagTriggerRefusesAPausedDAG(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, "id: sleepy\nowner: owner@example.com\npaused: true\ntasks:\n  - {id: a, type: test.ok}\n")
	b.deploy(t, "id: kicker\nowner: owner@example.com\ntasks:\n  - {id: kick, type: dag.trigger, with: {dag_id: sleepy}}\n")
	r := b.trigger(t, "kicker")
	b.execute(t, r, "kick")
	if ti := b.ti(t, r, "kick"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, `DAG "sleepy" is paused`) {
		t.Fatalf("triggering a paused DAG: %s %q; want failed saying it is paused", ti.State, ti.Error)
	}
}

func TestDagRunSensorWaitsForAnotherDAGsTask(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, "id: upstream_dag\nowner: owner@example.com\ntasks:\n  - {id: a, type: test.ok}\n  - {id: b, type: test.fail, needs: [a]}\n")
	b.deploy(t, `id: downstream_dag
owner: owner@example.com
tasks:
  - {id: wait_a, type: sensor.dag_run, with: {dag_id: upstream_dag, task_id: a}}
  - {id: wait_run, type: sensor.dag_run, with: {dag_id: upstream_dag}}
`)
	r := b.trigger(t, "downstream_dag")
	b.execute(t, r, "wait_a")
	if got := b.state(t, r, "wait_a"); got != scheduler.TaskUpForReschedule {
		t.Fatalf("with no upstream run yet the sensor is %s; want up_for_reschedule", got)
	}
	up := b.trigger(t, "upstream_dag") // same clock, same logical date
	b.execute(t, up, "a")
	b.execute(t, up, "b")
	b.clock.Add(time.Minute)
	b.tick(t)
	b.execute(t, r, "wait_a")
	b.execute(t, r, "wait_run")
	if got := b.state(t, r, "wait_a"); got != scheduler.TaskSuccess {
		t.Fatalf("wait_a is %s after upstream_dag.a succeeded", got)
	}
	if ti := b.ti(t, r, "wait_run"); ti.State != scheduler.TaskFailed || !strings.Contains(ti.Error, "ended failed") {
		t.Fatalf("wait_run: %s %q; want failed because the run failed", ti.State, ti.Error)
	}
}
