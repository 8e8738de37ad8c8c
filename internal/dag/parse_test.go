package dag

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// y joins lines into a YAML document: the n-th argument is line n of the file.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// want is one problem a test expects: exact line and field, and substrings of msg and hint.
type want struct {
	line  int
	field string
	msg   string
	hint  string
}

// head is a valid start of a DAG file: lines 1 and 2.
var head = []string{"id: d", "owner: data@example.com"}

func doc(lines ...string) string { return y(append(append([]string{}, head...), lines...)...) }

func cronStub(expr string) error {
	if expr == "bad cron" {
		return errors.New("expected 5 fields, got 2")
	}
	return nil
}

// Fake credentials are assembled at run time so that no secret scanner flags this file.
var (
	fakeSlack  = "xox" + "b-1234567890-0987654321-" + strings.Repeat("a", 24)
	fakeGoogle = "AI" + "za" + strings.Repeat("B", 35)
	fakeKey    = "-----BEGIN " + "RSA PRIVATE KEY-----"
)

func TestParseProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		opts Options
		want []want
	}{
		// YAML itself.
		{"yaml syntax", y("id: d", "tasks: [a, b", "owner: x"), Options{},
			[]want{{1, "", "invalid YAML: did not find expected ',' or ']'", ""}}},
		{"two documents", doc("tasks: [{id: a, type: noop}]", "---", "id: e"), Options{},
			[]want{{5, "", "more than one YAML document", "own file"}}},
		{"empty", "# nothing here\n", Options{}, []want{{0, "", "the file is empty", "id, owner and tasks"}}},
		{"not a mapping", y("- id: d"), Options{}, []want{{1, "", "must be a mapping of fields, not a list", ""}}},
		{"duplicate key", doc("owner: other@example.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "owner", "set twice (first at line 2)", "remove one"}}},

		// Unknown fields.
		{"unknown top-level", doc("shedule: '@daily'", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "shedule", `unknown field "shedule"`, `did you mean "schedule"? valid fields: id, description`}}},
		{"airflow top-level names", doc("schedule_interval: '@daily'", "default_args: {retries: 1}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "schedule_interval", "unknown field", `"schedule"`}, {4, "default_args", "unknown field", `"defaults"`}}},
		{"unknown task field", doc("tasks:", "  - id: a", "    type: noop", "    dependencies: [b]", "    retry: 2"), Options{},
			[]want{{6, "tasks[0].dependencies", "unknown field", `did you mean "needs"?`}, {7, "tasks[0].retry", "unknown field", `"retries"`}}},
		{"unknown defaults field", doc("defaults:", "  retires: 2", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{4, "defaults.retires", "unknown field", `did you mean "retries"?`}}},
		{"unknown alerts fields", doc("alerts:", "  slak: {}", "  slack: {channel: '#a', when: [failure]}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{4, "alerts.slak", "unknown field", `"slack"`}, {5, "alerts.slack.when", "unknown field", "channel, on, connection"}}},
		{"extension fields are ignored", doc("x-common: &c {retries: 1}", "tasks: [{id: a, type: noop}]", "xcommon: 1"), Options{},
			[]want{{5, "xcommon", "unknown field", ""}}},

		// Wrong kinds.
		{"needs is a string", doc("tasks:", "  - {id: a, type: noop}", "  - {id: b, type: noop, needs: a}"), Options{},
			[]want{{5, "tasks[1].needs", "must be a list, not a string", "[a]"}}},
		{"tasks is a mapping", doc("tasks:", "  a: {type: noop}"), Options{},
			[]want{{4, "tasks", "must be a list of tasks, not a mapping", ""}}},
		{"task is a string", doc("tasks:", "  - a"), Options{},
			[]want{{4, "tasks[0]", "a task must be a mapping of fields, not a string", "id, type"}}},
		{"with is a list", doc("tasks:", "  - {id: a, type: http, with: [x]}"), Options{},
			[]want{{4, "tasks[0].with", "must be a mapping", ""}}},
		{"tags", doc("tags: daily", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "tags", "must be a list", "[daily]"}}},
		{"tags entries", doc("tags: [a, '', a, [b]]", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "tags[1]", "is empty", ""}, {3, "tags[2]", "listed twice", ""}, {3, "tags[3]", "must be a string, not a list", ""}}},
		{"params is a list", doc("params: [a]", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "params", "must be a mapping, not a list", ""}}},
		{"description is a mapping", doc("description: {a: b}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "description", "must be a string, not a mapping", ""}}},

		// Ids.
		{"missing DAG id", y("owner: data@example.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{1, "id", "id is required", `add "id: daily_sales"`}}},
		{"bad DAG id chars", y("id: sales daily!", "owner: data@example.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{1, "id", `may only contain letters, digits`, `"sales_daily_"`}}},
		{"DAG id too long", y("id: "+strings.Repeat("a", 101), "owner: data@example.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{1, "id", "is 101 characters long; the limit is 100", ""}}},
		{"DAG id starts with dot", y("id: .hidden", "owner: data@example.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{1, "id", `must not start with "."`, `"hidden"`}}},
		{"task id starts with __", doc("tasks:", "  - {id: __a, type: noop}"), Options{},
			[]want{{4, "tasks[0].id", `must not start with "__"`, `"a"`}}},
		{"missing task id and type", doc("tasks:", "  - with: {}"), Options{},
			[]want{{4, "tasks[0].id", "task id is required", ""}, {4, "tasks[0].type", "task type is required", "noop, shell"}}},
		{"duplicate task ids", doc("tasks:", "  - id: a", "    type: noop", "  - id: a", "    type: noop"), Options{},
			[]want{{6, "tasks[1].id", `task id "a" is used twice: at line 4 and line 6`, "rename"}}},
		{"needs a missing task", doc("tasks:", "  - {id: extract, type: noop}", "  - {id: load, type: noop}", "  - id: report", "    type: noop", "    needs:", "      - extract", "      - lod"), Options{},
			[]want{{10, "tasks[2].needs", `task "lod" does not exist`, `did you mean "load"? known tasks: extract, load, report`}}},
		{"needs itself", doc("tasks:", "  - {id: a, type: noop, needs: [a]}"), Options{},
			[]want{{4, "tasks[0].needs", `task "a" needs itself`, "remove it"}}},
		{"needs twice", doc("tasks:", "  - {id: a, type: noop}", "  - {id: b, type: noop, needs: [a, a]}"), Options{},
			[]want{{5, "tasks[1].needs[1]", "listed twice", ""}}},
		{"cycle", doc("tasks:",
			"  - {id: a, type: noop, needs: [c]}", // 4
			"  - {id: b, type: noop, needs: [a]}", // 5
			"  - {id: c, type: noop, needs: [b]}", // 6
			"  - {id: d, type: noop, needs: [c]}", // 7
		), Options{},
			[]want{{4, "tasks[0].needs", "cycle: a -> b -> c -> a", `remove "c" from the needs of "a"`}}},
		{"two cycles", doc("tasks:",
			"  - {id: a, type: noop, needs: [b]}",
			"  - {id: b, type: noop, needs: [a]}",
			"  - {id: c, type: noop, needs: [d]}",
			"  - {id: d, type: noop, needs: [c]}",
		), Options{},
			[]want{{4, "tasks[0].needs", "cycle: a -> b -> a", ""}, {6, "tasks[2].needs", "cycle: c -> d -> c", ""}}},
		{"no tasks", doc("tasks: []"), Options{}, []want{{3, "tasks", "at least one task", ""}}},
		{"tasks missing", doc(), Options{}, []want{{1, "tasks", "tasks is required", ""}}},

		// Owner.
		{"owner missing", y("id: d", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{1, "owner", "owner is required", "team@example.com"}}},
		{"owner not an email", y("id: d", "owner: data-eng", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{2, "owner", `owner "data-eng" is not an email address: it needs exactly one @`, "data-eng@example.com"}}},
		{"owner without domain dot", y("id: d", "owner: a@localhost", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{2, "owner", "needs a dot", ""}}},
		{"owner empty local", y("id: d", "owner: '@example.com'", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{2, "owner", "nothing before the @", ""}}},
		{"two owners", y("id: d", "owner: a@x.com, b@x.com", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{2, "owner", "single address", ""}}},

		// Schedule and time zone.
		{"bad cron", doc("schedule: bad cron", "tasks: [{id: a, type: noop}]"), Options{ValidateCron: cronStub},
			[]want{{3, "schedule", `invalid schedule "bad cron": expected 5 fields, got 2`, "5-field cron"}}},
		{"empty schedule", doc("schedule: ''", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "schedule", "schedule is empty", "manual-only"}}},
		{"unknown time zone", doc("timezone: Asia/Seol", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "timezone", `unknown time zone "Asia/Seol"`, "Asia/Seoul"}}},
		{"abbreviated time zone", doc("timezone: KST", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "timezone", `"KST" is an abbreviation`, "Asia/Seoul for KST"}}},
		{"EST loads but is an abbreviation", doc("timezone: EST", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "timezone", "abbreviation", "America/New_York"}}},
		{"local time zone", doc("timezone: Local", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "timezone", "depends on the machine", "IANA"}}},

		// Start and end.
		{"bad start", doc("start: 2025-13-01", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "start", `"2025-13-01" is not a date or time`, "RFC 3339"}}},
		{"end before start", doc("timezone: Asia/Seoul", "start: 2025-02-01", "end: 2025-01-31T14:00:00Z", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{5, "end", "end (2025-01-31T23:00:00+09:00) is before start (2025-02-01T00:00:00+09:00)", "move end after start"}}},
		{"start is a list", doc("start: [2025]", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "start", "must be a date, not a list", ""}}},

		// Durations, numbers, booleans.
		{"negative duration", doc("dagrun_timeout: -5m", "sla: -30", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "dagrun_timeout", "must not be negative", "90s"}, {4, "sla", "must not be negative", ""}}},
		{"bad durations", doc("tasks:", "  - id: a", "    type: noop", "    timeout: 5 minutes", "    retry_delay: 10", "    poke_interval: 1.5", "    sensor_timeout: 5x", "    max_retry_delay: 2w"), Options{},
			[]want{{6, "tasks[0].timeout", `invalid duration "5 minutes"`, "1h30m"}, {8, "tasks[0].poke_interval", "must be a duration, not a number (1.5)", ""},
				{9, "tasks[0].sensor_timeout", "units are", ""}, {10, "tasks[0].max_retry_delay", "units are", ""}}},
		{"numbers", doc("max_active_runs: 0", "max_active_tasks: four", "defaults: {retries: -1}", "tasks:", "  - {id: a, type: noop, retries: 2.5}"), Options{},
			[]want{{3, "max_active_runs", "must be at least 1, not 0", ""}, {4, "max_active_tasks", "must be a whole number, not a string", ""},
				{5, "defaults.retries", "must be at least 0, not -1", ""}, {7, "tasks[0].retries", "must be a whole number, not a number (2.5)", ""}}},
		{"number too large", doc("max_active_runs: 99999999999999999999", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "max_active_runs", "", ""}}},
		{"booleans", doc("catchup: yes", "paused: 'false'", "tasks:", "  - {id: a, type: noop, depends_on_past: 1}"), Options{},
			[]want{{3, "catchup", "must be true or false", "write true (unquoted)"}, {4, "paused", "must be true or false", "write false (unquoted)"},
				{6, "tasks[0].depends_on_past", "must be true or false, not a number (1)", ""}}},

		// Enumerations.
		{"trigger rule", doc("defaults: {trigger_rule: all_sucess}", "tasks:", "  - {id: a, type: noop, trigger_rule: none_failed_or_skipped}"), Options{},
			[]want{{3, "defaults.trigger_rule", `unknown trigger rule "all_sucess"`, `did you mean "all_success"?`},
				{5, "tasks[0].trigger_rule", "unknown trigger rule", `"none_failed_min_one_success" here`}}},
		{"executor", doc("tasks:", "  - {id: a, type: http, executor: container}"), Options{},
			[]want{{4, "tasks[0].executor", `unknown executor "container"`, "executor: job"}}},
		{"resources", doc("defaults: {resources: ''}", "tasks:", "  - {id: a, type: noop, resources: 'x large'}"), Options{},
			[]want{{3, "defaults.resources", "not a worker class name", ""}, {5, "tasks[0].resources", "not a worker class name", "small"}}},
		{"unknown type", doc("tasks:", "  - {id: a, type: bigquery.qurey}", "  - {id: b, type: BashOperator}"), Options{},
			[]want{{4, "tasks[0].type", `unknown task type "bigquery.qurey"`, `did you mean "bigquery.query"? known types: noop, shell`},
				{5, "tasks[1].type", "unknown task type", `did you mean "shell"?`}}},
		{"custom task types", doc("tasks:", "  - {id: a, type: noop}", "  - {id: b, type: my.thing}"), Options{TaskTypes: []string{"my.thing", "my.other"}},
			[]want{{4, "tasks[0].type", `unknown task type "noop"`, "known types: my.thing, my.other"}}},

		// Alerts.
		{"alerts", doc("alerts:", "  slack:", "    on: [failure, sla_mis]", "tasks:", "  - id: a", "    type: noop", "    alerts: {slack: {channel: '#x', on: []}}"), Options{},
			[]want{{4, "alerts.slack.channel", "channel is required", "quoted"}, {5, "alerts.slack.on", `unknown alert event "sla_mis"`, `did you mean "sla_miss"?`},
				{9, "tasks[0].alerts.slack.on", "on is empty", ""}}},
		{"unquoted channel", doc("alerts:", "  slack: {channel: #alerts}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "", "invalid YAML", ""}}},
		{"alerts on is a string", doc("alerts: {slack: {channel: '#x', on: failure}}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "alerts.slack.on", "must be a list", "[failure]"}}},

		// Shell arguments.
		{"shell without with", doc("tasks:", "  - {id: a, type: shell}"), Options{},
			[]want{{4, "tasks[0].with.command", "needs with.command", ""}}},
		{"shell arguments", doc("tasks:", "  - id: a", "    type: shell", "    with:", "      cmd: ls", "      env: [A]", "      cwd: 3"), Options{},
			[]want{{6, "tasks[0].with.command", "needs with.command", ""}, {7, "tasks[0].with.cmd", `unknown field "cmd"`, `did you mean "command"?`},
				{8, "tasks[0].with.env", "must be a mapping", ""}, {9, "tasks[0].with.cwd", "must be a string, not a number", ""}}},
		{"shell env", doc("tasks:", "  - id: a", "    type: shell", "    with:", "      command: [ls]", "      env: {1BAD: x, OK: [y]}"), Options{},
			[]want{{7, "tasks[0].with.command", "must be a string, not a list", ""}, {8, "tasks[0].with.env.1BAD", "not a valid environment variable name", ""},
				{8, "tasks[0].with.env.OK", "must be a string, not a list", ""}}},
		{"for_each", doc("tasks:", "  - {id: a, type: noop, for_each: 3}", "  - {id: b, type: noop, for_each: 'files'}"), Options{},
			[]want{{4, "tasks[0].for_each", "must be a list or a template", ""}, {5, "tasks[1].for_each", "must be a list or a template", ""}}},

		// Secrets.
		{"slack token", doc("tasks:", "  - id: a", "    type: slack.post", "    with: {token: "+fakeSlack+"}"), Options{},
			[]want{{6, "tasks[0].with.token", "a Slack token (xoxb-…) is pasted into the file", `{{ secret "NAME" }}`}}},
		{"private key in a block", doc("tasks:", "  - id: a", "    type: http", "    with:", "      key: |", "        "+fakeKey, "        MIIEow"), Options{},
			[]want{{8, "tasks[0].with.key", "a private key", "Secret Manager"}}},
		{"google key in params", doc("params:", "  maps: "+fakeGoogle, "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{4, "params.maps", "a Google API key (AIza…)", ""}}},
		{"password in url", doc("tasks:", "  - id: a", "    type: shell", "    with:", "      command: |", "        echo start", "        psql postgres://etl:hunter22@db.example.com/sales"), Options{},
			[]want{{9, "tasks[0].with.command", "a password in a URL (postgres://etl:***@)", `{{ conn "ID" }}`}}},
		{"secret in a comment", doc("# token: "+fakeSlack, "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "", "a comment contains a Slack token", ""}}},

		// Templates.
		{"template does not parse", doc("tasks:", "  - id: a", "    type: http", "    with:", "      body: |", "        line one", "        {{ .ds ) }}", "        line three"), Options{},
			[]want{{9, "tasks[0].with.body", "template does not parse: unexpected right paren", "text/template"}}},
		{"template unknown function", doc("tasks:", "  - id: a", "    type: http", "    with:", "      headers:", "        X-Day: '{{ dsadd .ds 1 }}'"), Options{},
			[]want{{8, "tasks[0].with.headers.X-Day", `template calls unknown function "dsadd"`, "functions: var, secret, conn, xcom"}}},
		{"template value without dot", doc("tasks:", "  - {id: a, type: http, with: {url: 'x/{{ ds_nodash }}'}}"), Options{},
			[]want{{4, "tasks[0].with.url", `unknown function "ds_nodash"`, "did you mean the value .ds_nodash?"}}},
		{"xcom of a task that is not upstream", doc("tasks:",
			"  - {id: a, type: noop}",
			"  - {id: b, type: noop, needs: [a]}",
			"  - id: c",
			"    type: http",
			"    with:",
			"      body: |",
			"        {{ xcom \"a\" }}",
			"        {{ xcom \"b\" \"key\" | toJSON }}",
			"        {{ if true }}{{ xcom \"d\" }}{{ end }}",
			"        {{ range (xcom \"nope\").rows }}{{ . }}{{ end }}",
			"  - {id: d, type: noop, needs: [c]}",
		), Options{},
			[]want{{10, "tasks[2].with.body", `xcom reads task "a", which is not upstream of "c"`, `add "a" to the needs of "c"`},
				{11, "tasks[2].with.body", `xcom reads task "b", which is not upstream`, ""},
				{12, "tasks[2].with.body", `xcom reads task "d", which is not upstream`, ""},
				{13, "tasks[2].with.body", `xcom reads task "nope", which does not exist`, "known tasks: a, b, c, d"}}},
		{"duration of a task that is not upstream", doc("tasks:",
			"  - {id: a, type: noop}",
			"  - {id: b, type: noop}",
			"  - {id: c, type: http, needs: [b], with: {body: '{{ duration \"b\" }} {{ duration \"a\" }} {{ duration \"zz\" }}'}}",
		), Options{},
			[]want{{6, "tasks[2].with.body", `duration reads task "a", which is not upstream of "c", so its duration may not exist yet`, `add "a" to the needs of "c"`},
				{6, "tasks[2].with.body", `duration reads task "zz", which does not exist`, "known tasks"}}},
		{"for_each template", doc("tasks:", "  - {id: a, type: noop}", "  - {id: b, type: noop, for_each: '{{ xcom \"a\" }}'}"), Options{},
			[]want{{5, "tasks[1].for_each", `xcom reads task "a", which is not upstream of "b"`, ""}}},

		// YAML features that must not hang or crash.
		{"self-referencing alias", doc("params: &p {a: *p}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "", "", ""}}},
		{"merge key not a mapping", doc("tasks:", "  - {<<: [1], id: a, type: noop}"), Options{},
			[]want{{4, "tasks[0]", "a merge key (<<) must name a mapping", ""}}},
		{"custom tag", doc("params: {a: !Ref b}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "params.a", `unsupported YAML tag "!Ref"`, ""}}},
		{"non-finite number", doc("params: {a: .inf}", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "params.a", "not a finite number", ""}}},
		{"mapping key is a list", doc("[a]: 1", "tasks: [{id: a, type: noop}]"), Options{},
			[]want{{3, "", "a key must be a plain name", ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := Parse("dags/daily_sales.yaml", []byte(tc.src), tc.opts)
			if err == nil {
				t.Fatalf("Parse returned no error; DAG %+v", d)
			}
			if d != nil {
				t.Errorf("Parse returned a DAG along with problems")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, not Problems: %v", err, err)
			}
			for _, w := range tc.want {
				if !hasProblem(ps, w) {
					t.Errorf("no problem %+v in:\n%v", w, ps)
				}
			}
			for i, p := range ps {
				if p.File != "dags/daily_sales.yaml" {
					t.Errorf("problem %d has file %q", i, p.File)
				}
				if i > 0 && ps[i-1].Line > p.Line {
					t.Errorf("problems are not sorted by line:\n%v", ps)
				}
			}
		})
	}
}

func hasProblem(ps Problems, w want) bool {
	for _, p := range ps {
		if p.Line == w.line && (w.field == "" || p.Field == w.field) && strings.Contains(p.Msg, w.msg) && strings.Contains(p.Hint, w.hint) {
			return true
		}
	}
	return false
}

func TestSecretsAreNotPrinted(t *testing.T) {
	t.Parallel()
	src := doc("params:", "  a: "+fakeSlack, "  b: "+fakeGoogle, "  c: https://me:s3cretpassw0rd@example.com/x", "tasks: [{id: a, type: noop}]")
	_, err := Parse("x.yaml", []byte(src), Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, secret := range []string{fakeSlack[6:], fakeGoogle[5:], "s3cretpassw0rd"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error prints the secret %q:\n%v", secret, err)
		}
	}
	if n := len(err.(Problems)); n != 3 {
		t.Errorf("got %d problems, want 3:\n%v", n, err)
	}
}

func TestNotSecrets(t *testing.T) {
	t.Parallel()
	src := doc("tasks:",
		"  - id: a",
		"    type: shell",
		"    with:",
		"      command: |",
		`        git clone https://bot:$GITHUB_TOKEN@github.com/org/repo.git`,
		`        psql "postgres://etl:{{secret "db-password"}}@db/sales"`,
		`        curl https://user:***@example.com/`,
		`        echo xoxb-short AIzaShort`,
	)
	if _, err := Parse("x.yaml", []byte(src), Options{}); err != nil {
		t.Fatalf("unexpected problems:\n%v", err)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{
		"90s": 90 * time.Second, "5m": 5 * time.Minute, "2h": 2 * time.Hour, "1h30m": 90 * time.Minute,
		"1d": 24 * time.Hour, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "30": 30 * time.Second,
		"0": 0, "250ms": 250 * time.Millisecond, "2h1d": 26 * time.Hour,
	}
	for in, want := range good {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1m", "-3", "5 m", "1w", "d", "1e3s", "99999999999999999999", "999999999d", "1.2.3h", "m5"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestProblemError(t *testing.T) {
	t.Parallel()
	p := Problem{File: "dags/x.yaml", Line: 12, Field: "tasks[2].needs", Msg: `task "lod" does not exist`, Hint: `did you mean "load"? known tasks: extract, load`}
	want := `dags/x.yaml:12: tasks[2].needs: task "lod" does not exist (hint: did you mean "load"? known tasks: extract, load)`
	if got := p.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Problem{File: "x.yaml", Msg: "the file is empty"}).Error(); got != "x.yaml: the file is empty" {
		t.Errorf("got %s", got)
	}
	ps := Problems{p, {File: "a.yaml", Line: 1, Msg: "m"}}
	if got := ps.Error(); got != want+"\na.yaml:1: m" {
		t.Errorf("got %s", got)
	}
}

// TestParseMinimal checks the built-in defaults.
func TestParseMinimal(t *testing.T) {
	t.Parallel()
	src := y("id: minimal", "owner: me@example.com", "tasks:", "  - id: only", "    type: noop")
	d, err := Parse("dags/minimal.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Timezone != "UTC" || d.MaxActiveRuns != 16 || d.MaxActiveTasks != 16 || d.Start != nil || d.End != nil || d.Schedule != "" || d.Catchup || d.Paused {
		t.Errorf("DAG defaults wrong: %+v", d)
	}
	want := Task{ID: "only", Type: "noop", TriggerRule: "all_success", RetryDelay: 5 * time.Minute, Resources: "small", Line: 4}
	if got := d.Tasks[0]; fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("task\n got %+v\nwant %+v", got, want)
	}
	sum := sha256.Sum256([]byte(src))
	if d.Source.File != "dags/minimal.yaml" || d.Source.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("source %+v", d.Source)
	}
}

func TestParseTimes(t *testing.T) {
	t.Parallel()
	seoul, _ := time.LoadLocation("Asia/Seoul")
	tests := []struct {
		tz, start string
		want      time.Time
	}{
		{"Asia/Seoul", "2025-01-01", time.Date(2025, 1, 1, 0, 0, 0, 0, seoul)},
		{"Asia/Seoul", "'2025-01-01'", time.Date(2025, 1, 1, 0, 0, 0, 0, seoul)},
		{"Asia/Seoul", "2025-01-01T09:30:00", time.Date(2025, 1, 1, 9, 30, 0, 0, seoul)},
		{"Asia/Seoul", "2025-01-01 09:30:00", time.Date(2025, 1, 1, 9, 30, 0, 0, seoul)},
		{"Asia/Seoul", "2025-01-01T00:00:00Z", time.Date(2025, 1, 1, 9, 0, 0, 0, seoul)},
		{"Asia/Seoul", "2025-01-01T09:00:00+09:00", time.Date(2025, 1, 1, 9, 0, 0, 0, seoul)},
		{"UTC", "2025-01-01", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		src := y("id: d", "owner: me@example.com", "timezone: "+tc.tz, "start: "+tc.start, "tasks: [{id: a, type: noop}]")
		d, err := Parse("d.yaml", []byte(src), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.start, err)
		}
		if !d.Start.Equal(tc.want) || d.Start.Location().String() != tc.tz {
			t.Errorf("start %s in %s = %v, want %v", tc.start, tc.tz, d.Start, tc.want)
		}
	}
}

// TestParseGood parses the realistic DAG in testdata and checks what it says, defaults applied.
func TestParseGood(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/api_to_warehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crons []string
	opts := Options{ValidateCron: func(expr string) error { crons = append(crons, expr); return nil }}
	d, err := Parse("testdata/api_to_warehouse.yaml", data, opts)
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("crons", crons, []string{"15 * * * *"})
	check("id", d.ID, "orders_api_to_bq")
	check("owner", d.Owner, "analytics-eng@example.com")
	check("start", d.Start.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, berlin)), true)
	check("end", d.End.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, berlin)), true)
	check("catchup", d.Catchup, true)
	check("runs/tasks", []int{d.MaxActiveRuns, d.MaxActiveTasks}, []int{2, 8})
	check("timeouts", []time.Duration{d.DagrunTimeout, d.SLA}, []time.Duration{90 * time.Minute, 45 * time.Minute})
	check("params", d.Params, map[string]any{"dataset": "shop", "regions": []any{"eu", "us"}, "page_size": int64(500), "dry_run": false})
	check("page_size type", fmt.Sprintf("%T", d.Params["page_size"]), "int64")
	check("defaults.retries", *d.Defaults.Retries, 3)
	check("alerts", *d.Alerts.Slack, SlackAlert{Channel: "#orders-alerts", On: []string{"failure", "sla_miss"}, Connection: "slack-prod"})
	check("tags", d.Tags, []string{"orders", "hourly", "api"})
	check("tasks", len(d.Tasks), 7)

	wait, _ := d.Task("wait_for_api")
	check("wait", []any{wait.Retries, wait.PokeInterval, wait.SensorTimeout, wait.Line, wait.RetryDelay, wait.Timeout},
		[]any{0, time.Minute, 30 * time.Minute, 39, 2 * time.Minute, 15 * time.Minute})
	check("wait.with", wait.With, map[string]any{"url": "https://api.shop.example.com/v2/health", "expect_status": int64(200)})

	extract, _ := d.Task("extract")
	check("extract", []any{extract.Resources, extract.Executor, extract.Retries, extract.RetryExponentialBackoff, extract.MaxRetryDelay},
		[]any{"medium", "job", 3, true, 20 * time.Minute})
	check("extract.for_each", extract.ForEach, []any{"eu", "us"})
	check("extract.env", extract.With["env"], map[string]any{
		"API_BASE": "https://api.shop.example.com/v2", "API_TOKEN": `{{ secret "shop-api-token" }}`, "PAGE_SIZE": "500"})
	check("extract.cwd", extract.With["cwd"], "/app")

	stage, _ := d.Task("stage")
	check("stage.timeout (0 overrides the default)", stage.Timeout, time.Duration(0))
	merge, _ := d.Task("merge")
	check("merge.retries", merge.Retries, 1)
	announce, _ := d.Task("announce")
	check("announce.alerts", *announce.Alerts.Slack, SlackAlert{Channel: "#orders", On: []string{"failure", "retry"}})
	done, _ := d.Task("done")
	check("done", []any{done.TriggerRule, done.Needs}, []any{"none_failed_min_one_success", []string{"announce", "is_big_day"}})
	check("roots", d.Roots(), []string{"wait_for_api"})
}

// TestTestdata parses every file in testdata: good_ files and the others without problems,
// bad_ files with them.
func TestTestdata(t *testing.T) {
	t.Parallel()
	res, err := LoadDir("testdata", Options{ValidateCron: cronStub})
	if err != nil {
		t.Fatal(err)
	}
	for file, ps := range res.Errors {
		if !strings.Contains(file, "bad_") {
			t.Errorf("%s has problems:\n%v", file, ps)
		}
	}
	for _, d := range res.DAGs {
		if strings.Contains(d.Source.File, "bad_") {
			t.Errorf("%s loaded without problems", d.Source.File)
		}
	}
	if len(res.DAGs) < 3 {
		t.Errorf("only %d good DAGs in testdata", len(res.DAGs))
	}
}

// TestAllProblemsReported checks that a file with many mistakes gets one problem for each, in
// line order.
func TestAllProblemsReported(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/bad_many_problems.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("bad.yaml", data, Options{})
	var got []string
	for _, p := range err.(Problems) {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Field))
	}
	want := []string{
		"2 id", "3 owner", "4 shedule", "5 timezone", "6 start", "7 catchup", "8 max_active_runs",
		"9 dagrun_timeout", "10 default_args", "13 defaults.retries", "14 defaults.trigger_rule",
		"16 alerts.slack.on", "17 tags", "22 tasks[0].with.command", "23 tasks[0].with.enviroment",
		"25 tasks[1].type", "26 tasks[1].needs", "28 tasks[1].with.sql", "31 tasks[2].needs",
		"32 tasks[2].retries", "36 tasks[2].with.command", "36 tasks[2].with.command", "41 tasks[3].with.text", "42 tasks[4].id",
		"47 tasks[5].needs",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\n\nwant:\n%s\n\nfull:\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"), err)
	}
}

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "sales.daily-v2_x", strings.Repeat("a", 100), "a__b", "1"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".a", "__a", "a b", "a/b", "ä", strings.Repeat("a", 101), "a[0]"} {
		if err := ValidateID(id); err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", id)
		}
	}
}

func TestParseYAMLFeatures(t *testing.T) {
	t.Parallel()
	src := y(
		"---",
		"id: d",
		"owner: a@example.com",
		"x-retry: &retry {retries: 4, retry_delay: 1m}",
		"tasks:",
		"  - <<: *retry",
		"    id: a",
		"    type: noop",
		"  - {<<: *retry, id: b, type: noop, retries: 1, needs: [a]}",
		"---",
	)
	d, err := Parse("d.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := d.Tasks[0], d.Tasks[1]; a.Retries != 4 || a.RetryDelay != time.Minute || b.Retries != 1 || b.RetryDelay != time.Minute {
		t.Errorf("merge keys not applied: %+v %+v", a, b)
	}
}
