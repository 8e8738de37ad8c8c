package local_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/local"
	"github.com/updraft-dev/updraft/internal/secrets"
	"github.com/updraft-dev/updraft/scheduler"
)

// hostileValues are conf values that run code when pasted into a shell command or SQL text:
// each shell one would create its own marker file in dir.
func hostileValues(dir string) []string {
	m := func(n string) string { return filepath.Join(dir, "pwned-"+n) }
	return []string{
		"$(touch " + m("subst") + ")",
		"`touch " + m("backtick") + "`",
		"2025-01-01; touch " + m("semicolon"),
		"2025-01-01\ntouch " + m("newline"),
		`"; touch ` + m("dquote") + `; echo "`,
		`'; touch ` + m("squote") + `; echo '`,
		`x" OR "1"="1`,
		`'; DROP TABLE updraft_examples.jobs; --`,
	}
}

// noMarkers fails the test when any hostile value ran.
func noMarkers(t *testing.T, dir string) {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dir, "pwned-*"))
	if len(found) > 0 {
		t.Fatalf("a conf value ran as code: %v", found)
	}
}

// TestHostileConfIsDataEverywhere triggers every example DAG, and a DAG using each task type
// that takes values, with conf values made of $(…), backticks, ;, newlines and quotes, on the
// local stack with real worker processes and the BigQuery emulator. Typed params refuse them
// at the trigger; everything else carries them as data (environment variables, query
// parameters, JSON), so no marker file is ever created, and the values arrive intact.
func TestHostileConfIsDataEverywhere(t *testing.T) {
	s := startStack(t, time.Minute)
	bq := bigQuery(t, s)
	s.deployExamples(t)
	if err := s.stack.Engine.SetPaused(s.ctx, "marts_daily", false); err != nil { // dag.trigger refuses paused DAGs
		t.Fatal(err)
	}
	orders := httptest.NewServer(http.HandlerFunc(local.SampleOrders))
	defer orders.Close()
	sm, err := secrets.Open(s.ctx, s.stack.Project, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	for name, value := range map[string]string{
		"updraft-connections-slack":      `{"conn_type": "slack", "password": "` + "xox" + `b-attack-fake"}`,
		"updraft-connections-orders_api": `{"conn_type": "http", "host": "` + orders.URL + `"}`,
	} {
		if err := sm.Set(s.ctx, name, value); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	bad := hostileValues(dir)

	// Every example DAG, each param set to hostile values (a list param to a list of them,
	// so that they become for_each items); a DAG without params gets them as an extra key.
	res, err := dag.LoadFiles([]string{"../../examples/dags"}, dag.Options{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("examples: %v %v", err, res.Errors)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	at := map[string]time.Time{ // logical dates whose inputs the emulator holds
		"events_to_marts_daily":     time.Date(2025, 2, 27, 2, 0, 0, 0, seoul),
		"orders_to_warehouse_daily": time.Date(2025, 3, 2, 3, 0, 0, 0, seoul),
		"marketing_sources_daily":   time.Date(2025, 3, 2, 7, 0, 0, 0, seoul),
		"bigquery_usage_daily":      time.Date(2025, 3, 2, 1, 0, 0, 0, seoul),
	}
	var runs []*scheduler.Run
	refused := map[string]string{}
	for i, d := range res.DAGs {
		conf := map[string]any{}
		for k, def := range d.Params {
			if _, isList := def.([]any); isList {
				conf[k] = []any{bad[6], bad[7], bad[0]}
			} else {
				conf[k] = bad[i%len(bad)]
			}
		}
		if len(d.Params) == 0 {
			conf["payload"] = bad[i%len(bad)]
		}
		when, ok := at[d.ID]
		if !ok {
			when = time.Now()
		}
		r, err := s.stack.Engine.Trigger(s.ctx, d.ID, conf, when)
		if err != nil {
			refused[d.ID] = err.Error()
			continue
		}
		runs = append(runs, r)
	}
	for _, id := range []string{"bigquery_usage_daily", "marts_daily"} { // typed params with a pattern
		if !strings.Contains(refused[id], "must match") {
			t.Errorf("%s: the hostile conf was not refused by its typed param: %q", id, refused[id])
		}
	}
	want := map[string]scheduler.RunState{"broken_source": scheduler.RunFailed}
	for _, r := range runs {
		w, ok := want[r.DagID]
		if !ok {
			w = scheduler.RunSuccess
		}
		if got := s.waitRun(t, r); got != w {
			t.Errorf("%s with a hostile conf: run %s, want %s (%v)", r.DagID, got, w, s.states(t, r))
		}
	}
	if n := countRows(t, bq, "SELECT COUNT(*) FROM updraft_examples.jobs"); n == 0 {
		t.Error("updraft_examples.jobs is empty: a DROP ran")
	}
	noMarkers(t, dir)

	// The for_each items of events_to_marts_daily were bound as @source: each hostile item
	// counted its own (absent) source instead of rewriting the query.
	for _, r := range runs {
		if r.DagID != "events_to_marts_daily" {
			continue
		}
		raw, err := s.stack.Engine.XCom(s.ctx, r.DagID, r.RunID, "count_rows")
		if err != nil {
			t.Fatal(err)
		}
		var counts []struct {
			Rows []struct {
				Source string  `json:"source"`
				N      float64 `json:"n"`
			} `json:"rows"`
		}
		if err := json.Unmarshal(raw, &counts); err != nil || len(counts) != 3 {
			t.Fatalf("count_rows XCom %s: %v", raw, err)
		}
		for i, c := range counts {
			if len(c.Rows) != 1 || c.Rows[0].Source != []string{bad[6], bad[7], bad[0]}[i] || c.Rows[0].N != 0 {
				t.Errorf("count_rows[%d]: %+v; want the item as the source, counted as data (0 rows)", i, c.Rows)
			}
		}
	}

	hostileTypes(t, s, dir, bad)
}

// hostileTypes runs a DAG that hands a conf value to each task type that takes values (shell,
// http, sensor.http, pubsub.publish, slack.post, bigquery.query, branch, dag.trigger), in the
// safe forms (env, shq, query parameters, JSON), once per hostile value: each must arrive
// exactly as sent and nothing may run.
func hostileTypes(t *testing.T, s *stackBundle, dir string, bad []string) {
	var mu sync.Mutex
	got := map[string][]string{} // what the API received from http: query q and JSON p
	poked := map[string]int{}    // the queries sensor.http sent
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ P string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		if r.Method == http.MethodGet {
			poked[r.URL.Query().Get("q")]++
		} else {
			got[r.URL.Query().Get("q")] = append(got[r.URL.Query().Get("q")], body.P)
		}
		mu.Unlock()
		io.WriteString(w, `{"ok": true}`)
	}))
	defer api.Close()
	ps, err := pubsub.NewClient(s.ctx, s.stack.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	topic, err := ps.TopicAdminClient.CreateTopic(s.ctx, &pubsubpb.Topic{Name: "projects/" + s.stack.Project + "/topics/hostile"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ps.SubscriptionAdminClient.CreateSubscription(s.ctx, &pubsubpb.Subscription{
		Name: "projects/" + s.stack.Project + "/subscriptions/hostile-check", Topic: topic.GetName(), AckDeadlineSeconds: 10})
	if err != nil {
		t.Fatal(err)
	}
	child := `id: hostile_child
owner: owner@example.com
params: {p: ""}
tasks:
  - id: echo
    type: shell
    with:
      env: {P: "{{ .params.p }}"}
      command: echo "b64:$(printf '%s' "$P" | base64 -w0)"
`
	parent := `id: hostile_types
owner: owner@example.com
params: {p: ""}
tasks:
  - id: shell_env
    type: shell
    with:
      env: {P: "{{ .params.p }}"}
      command: echo "b64:$(printf '%s' "$P" | base64 -w0)"
  - id: shell_shq
    type: shell
    with:
      command: echo "b64:$(printf '%s' {{ shq .params.p }} | base64 -w0)"
  - id: http
    type: http
    with: {url: "` + api.URL + `/echo", method: POST, params: {q: "{{ .params.p }}"}, json: {p: "{{ .params.p }}"}}
  - id: poke
    type: sensor.http
    with: {url: "` + api.URL + `/poke", params: {q: "{{ .params.p }}"}}
  - id: publish
    type: pubsub.publish
    with: {topic: hostile, messages: [{data: {p: "{{ .params.p }}"}, attributes: {p: "{{ .params.p }}"}}]}
  - id: slack
    type: slack.post
    with: {channel: "#hostile", text: "got {{ .params.p }}"}
  - id: bq
    type: bigquery.query
    with: {sql: "SELECT @p AS p", params: {p: "{{ .params.p }}"}}
  - id: branch
    type: branch
    with: {choose: '{{ if eq .params.p "left" }}left{{ else }}right{{ end }}'}
  - {id: left, type: noop, needs: [branch]}
  - {id: right, type: noop, needs: [branch]}
  - id: trigger_child
    type: dag.trigger
    with: {dag_id: hostile_child, conf: {p: "{{ .params.p }}"}}
`
	for _, src := range []string{child, parent} {
		d, err := dag.Parse("hostile.yaml", []byte(src), dag.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.stack.Engine.Deploy(s.ctx, d, []byte(src)); err != nil {
			t.Fatal(err)
		}
	}
	before := len(testStandIns.Slack.Messages())
	base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	runs := map[string]*scheduler.Run{}
	for i, v := range bad {
		r, err := s.stack.Engine.Trigger(s.ctx, "hostile_types", map[string]any{"p": v}, base.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		runs[v] = r
	}
	b64 := func(v string) string { return `"b64:` + base64.StdEncoding.EncodeToString([]byte(v)) + `"` }
	for v, r := range runs {
		if st := s.waitRun(t, r); st != scheduler.RunSuccess {
			t.Fatalf("hostile_types with %q: %s %v", v, st, s.states(t, r))
		}
		for _, task := range []string{"shell_env", "shell_shq"} {
			if x, _ := s.stack.Engine.XCom(s.ctx, r.DagID, r.RunID, task); string(x) != b64(v) {
				t.Errorf("%s with %q printed %s; want the value itself, %s", task, v, x, b64(v))
			}
		}
		if x, _ := s.stack.Engine.XCom(s.ctx, r.DagID, r.RunID, "bq"); !strings.Contains(string(x), mustJSON(v)) {
			t.Errorf("bigquery.query with %q: XCom %s; want the parameter returned as data", v, x)
		}
		c, err := s.stack.Engine.RunAt(s.ctx, "hostile_child", r.LogicalDate)
		if err != nil || c == nil {
			t.Fatalf("no hostile_child run for %q: %v", v, err)
		}
		if st := s.waitRun(t, c); st != scheduler.RunSuccess {
			t.Fatalf("hostile_child with %q: %s", v, st)
		}
		if x, _ := s.stack.Engine.XCom(s.ctx, c.DagID, c.RunID, "echo"); string(x) != b64(v) {
			t.Errorf("the triggered DAG's shell printed %s for %q; want %s", x, v, b64(v))
		}
	}
	mu.Lock()
	for _, v := range bad {
		if ps := got[v]; len(ps) != 1 || ps[0] != v {
			t.Errorf("the API got %q as the query for %q with bodies %q; want it once, as sent", v, v, ps)
		}
		if poked[v] != 1 {
			t.Errorf("sensor.http sent %q as its query %d times; want once, as sent", v, poked[v])
		}
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	published := map[string]string{} // attribute p → data
	var pmu sync.Mutex
	_ = ps.Subscriber(sub.GetName()).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		pmu.Lock()
		defer pmu.Unlock()
		var data struct{ P string }
		_ = json.Unmarshal(m.Data, &data)
		published[m.Attributes["p"]] = data.P
		if len(published) == len(bad) {
			cancel()
		}
	})
	cancel()
	for _, v := range bad {
		if d, ok := published[v]; !ok || d != v {
			t.Errorf("pubsub.publish carried %q as %q (received %v); want it in the data and the attribute, as sent", v, d, ok)
		}
	}
	msgs := testStandIns.Slack.Messages()[before:]
	texts := map[string]bool{}
	for _, m := range msgs {
		texts[m.Text] = true
	}
	for _, v := range bad {
		if !texts["got "+v] {
			t.Errorf("slack.post did not carry %q as text (messages %d)", v, len(msgs))
		}
	}
	noMarkers(t, dir)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
