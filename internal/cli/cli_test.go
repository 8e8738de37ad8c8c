package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/emulators/emutest"
	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
)

var workerCmd, secretsHost string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-cli-")
	if err != nil {
		panic(err)
	}
	bin := filepath.Join(dir, "updraft")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/updraft-dev/updraft/cmd/updraft").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(2)
	}
	workerCmd = bin + " worker"
	sm, err := smemu.Start("", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer sm.Stop()
	secretsHost = sm.Addr
	emutest.Main(m)
}

// run runs the CLI in-process with a private home and no backend in its environment.
func run(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, env, "", args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if env["UPDRAFT_HOME"] == "" {
		env["UPDRAFT_HOME"] = t.TempDir()
	}
	app := &App{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(stdin), Getenv: func(k string) string { return env[k] }}
	code := app.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// asFirstAdmin makes the local identity of env (UPDRAFT_USER, else the dev identity) the
// project's first admin, as `updraft dev` does for the dev identity: local commands are
// authorised and audited as that identity.
func asFirstAdmin(t *testing.T, env map[string]string) {
	t.Helper()
	who := env["UPDRAFT_USER"]
	if who == "" {
		who = "dev@localhost"
	}
	if out, errOut, code := run(t, env, "users", "grant", who, "admin"); code != 0 {
		t.Fatalf("grant %s the first admin: exit %d\n%s%s", who, code, out, errOut)
	}
}

func TestValidateReportsEveryProblemWithFileAndLine(t *testing.T) {
	out, errOut, code := run(t, nil, "dags", "validate", "testdata/broken.yaml", "testdata/seoul_daily.yaml")
	if code != 1 {
		t.Fatalf("exit %d; want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"testdata/broken.yaml:2: owner:",
		"testdata/broken.yaml:3: schedule:",
		"testdata/broken.yaml:4: timezone:",
		"testdata/broken.yaml:7: tasks[0].type:",
		`did you mean "shell"`,
		"testdata/broken.yaml:10: tasks[1].needs:",
		"1 DAG(s) valid",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	if _, _, code := run(t, nil, "dags", "validate", "testdata/seoul_daily.yaml"); code != 0 {
		t.Fatalf("a valid DAG: exit %d", code)
	}
	if _, errOut, code := run(t, nil, "dags", "validate"); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Fatalf("no paths: exit %d\n%s", code, errOut)
	}
}

func TestScheduleNextPrintsIntervalsInTheDAGsTimezone(t *testing.T) {
	out, errOut, code := run(t, nil, "schedule", "next", "testdata/seoul_daily.yaml", "-n", "2", "--after", "2025-01-02T00:04:00+09:00")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "2025-01-01T00:05:00+09:00  2025-01-01T00:05:00+09:00  2025-01-02T00:05:00+09:00\n" +
		"2025-01-02T00:05:00+09:00  2025-01-02T00:05:00+09:00  2025-01-03T00:05:00+09:00\n"
	if out != want {
		t.Fatalf("schedule next:\n%s\nwant:\n%s", out, want)
	}
	for _, bad := range [][]string{
		{"schedule", "next", "testdata/seoul_daily.yaml", "--after", "yesterday"},
		{"schedule", "next", "testdata/seoul_daily.yaml", "-n", "0"},
		{"schedule", "next"},
	} {
		if _, errOut, code := run(t, nil, bad...); code != 2 {
			t.Errorf("%v: exit %d; want 2 (usage)\n%s", bad, code, errOut)
		}
	}
}

func TestCommandsWithoutABackendSayWhatToDo(t *testing.T) {
	for _, args := range [][]string{{"runs", "list", "x"}, {"trigger", "x"}, {"dags", "list"}} {
		_, errOut, code := run(t, nil, args...)
		if code != 1 || !strings.Contains(errOut, "make dev") {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
	if _, errOut, code := run(t, nil, "nonsense"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := run(t, nil, "trigger", "x", "--conf", "{not json"); code != 2 || !strings.Contains(errOut, "JSON object") {
		t.Errorf("bad conf: exit %d\n%s", code, errOut)
	}
}

func TestTestCommandRunsTheDAGAndExitsWithItsOutcome(t *testing.T) {
	env := map[string]string{"UPDRAFT_WORKER_CMD": workerCmd}
	out, errOut, code := run(t, env, "test", "testdata/seoul_daily.yaml", "--date", "2025-01-01")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"logical date 2025-01-01T00:05:00+09:00, data interval [2025-01-01T00:05:00+09:00, 2025-01-02T00:05:00+09:00)",
		"report", "success", "run manual__2024-12-31T15:05:00Z: success", // run ids are RFC 3339 in UTC
	} {
		if !strings.Contains(out, want) {
			t.Errorf("test output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = run(t, env, "test", "testdata/failing.yaml", "--date", "2025-01-01")
	if code != 1 || !strings.Contains(out, "fails") || !strings.Contains(out, "exit code 3") || !strings.Contains(out, ": failed") {
		t.Fatalf("failing DAG: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := run(t, env, "test", "testdata/broken.yaml"); code != 1 || !strings.Contains(errOut, "broken.yaml:") {
		t.Fatalf("invalid DAG: exit %d\n%s", code, errOut)
	}
	// DAGs that need BigQuery, Slack and connections run too: the test brings the stand-ins.
	for _, f := range []string{"../../examples/dags/orders_to_warehouse_daily.yaml", "../../examples/dags/bigquery_usage_daily.yaml"} {
		out, errOut, code := run(t, env, "test", f, "--date", "2025-03-01")
		if code != 0 || !strings.Contains(out, ": success") {
			t.Fatalf("updraft test %s: exit %d\n%s\n%s", f, code, out, errOut)
		}
	}
}

func TestOperationsThroughTheCLI(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
	}
	asFirstAdmin(t, env)
	must := func(want string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, env, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("updraft %s: exit %d\n%s%s\nwant %q", strings.Join(args, " "), code, out, errOut, want)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := run(t, env, args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("updraft %s: exit %d\n%s%s\nwant an error with %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	must("set region", "vars", "set", "region", "asia-northeast3")
	must("asia-northeast3", "vars", "get", "region")
	must("region    asia-northeast3", "vars", "list")
	must("deleted region", "vars", "delete", "region")
	fails("not set", "vars", "get", "region")
	fails("variable name", "vars", "set", "bad name!", "x")
	must("created", "dags", "deploy", "testdata/seoul_daily.yaml")
	must("unchanged", "dags", "deploy", "testdata/seoul_daily.yaml")
	must("paused seoul_daily", "dags", "pause", "seoul_daily")
	must("paused", "dags", "list")
	must("unpaused", "dags", "unpause", "seoul_daily")
	fails("no DAG", "dags", "pause", "nope")

	started := startAdvancer(t, env["GOOGLE_CLOUD_PROJECT"])
	out := must("triggered seoul_daily/manual__", "trigger", "seoul_daily", "--logical-date", "2025-03-01T09:00:00+09:00")
	ref := strings.TrimSpace(strings.TrimPrefix(out, "triggered "))
	started(ref) // by the advancer: the CLI only created it
	must("report  queued", "runs", "show", ref)
	must("+09:00) (Asia/Seoul)", "runs", "show", ref)
	fails("refused", "tasks", "mark", ref, "report", "success") // queued: refused, not raced
	fails("no task", "tasks", "clear", ref, "nope")
	fails("no run", "tasks", "clear", "seoul_daily/manual__1999-01-01T00:00:00Z", "report")
	fails("success or failed", "tasks", "mark", ref, "report", "done")

	must("backfill seoul_daily~2025-01-01~2025-01-03: 3 interval(s)", "backfill", "seoul_daily", "--from", "2025-01-01", "--to", "2025-01-03", "--no-wait")
	must("already running", "backfill", "seoul_daily", "--from", "2025-01-01", "--to", "2025-01-03", "--no-wait")
	must("seoul_daily~2025-01-01~2025-01-03  running", "backfill", "status", "seoul_daily")
	must("STARTED (Asia/Seoul)", "backfill", "status", "seoul_daily") // times in the DAG's zone, named
	must("cancelled", "backfill", "cancel", "seoul_daily~2025-01-01~2025-01-03")
	fails("is after to", "backfill", "seoul_daily", "--from", "2025-02-01", "--to", "2025-01-01")
	fails("before the DAG's start", "backfill", "seoul_daily", "--from", "2024-12-01", "--to", "2025-01-01")
	fails("JSON object", "trigger", "seoul_daily", "--conf", `["not", "an", "object"]`)
	out = must("backfill__2025-01-01", "runs", "list", "seoul_daily")
	if !strings.Contains(out, "LOGICAL DATE (Asia/Seoul)") || !strings.Contains(out, "DATA INTERVAL END (Asia/Seoul)") {
		t.Errorf("runs list should name the zone of every time column:\n%s", out)
	}
	if strings.Count(out, "backfill__") != 3 {
		t.Fatalf("runs list:\n%s\nwant the 3 backfill runs", out)
	}
}

func TestSecretsCommands(t *testing.T) {
	env := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    emutest.Project(t),
		"FIRESTORE_EMULATOR_HOST": os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"PUBSUB_EMULATOR_HOST":    os.Getenv("PUBSUB_EMULATOR_HOST"),
		smemu.EnvVar:              secretsHost,
	}
	value := "pg-" + "password-123"
	out, errOut, code := runIn(t, env, value+"\n", "secrets", "set", "updraft-connections-warehouse")
	if code != 0 || strings.Contains(out+errOut, value) {
		t.Fatalf("secrets set: exit %d\n%s%s (the value must never be printed)", code, out, errOut)
	}
	if out, _, code := run(t, env, "secrets", "list"); code != 0 || !strings.Contains(out, "updraft-connections-warehouse") || strings.Contains(out, value) {
		t.Fatalf("secrets list: exit %d\n%s", code, out)
	}
	if _, errOut, code := runIn(t, env, "", "secrets", "set", "empty"); code == 0 {
		t.Fatalf("an empty secret was accepted\n%s", errOut)
	}
}

// `updraft dev --help` names every flag dev takes (README's command table does).
func TestDevUsageNamesItsFlags(t *testing.T) {
	out, errOut, _ := run(t, nil, "dev", "--help")
	for _, flag := range []string{"--addr", "--allow-remote", "--tick", "--reset", "--warm-workers"} {
		if !strings.Contains(out+errOut, flag) {
			t.Errorf("dev --help does not name %s:\n%s%s", flag, out, errOut)
		}
	}
}
