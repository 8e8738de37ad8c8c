//go:build soak

package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stack is one `updraft dev` started as a user starts it, in its own UPDRAFT_HOME and
// project, with the DAG files the test wrote into its DAG folder.
type stack struct {
	t       *testing.T
	home    string // UPDRAFT_HOME
	dagDir  string // the folder `updraft dev` deploys and watches
	work    string // where tasks write their lines and pids
	addr    string // 127.0.0.1:PORT of the UI, API and /healthz
	logPath string // dev's stdout and stderr
	env     []string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// stackOptions configure a stack.
type stackOptions struct {
	// Env is added to dev's environment (its workers inherit it): UPDRAFT_LEASE and co.
	Env []string
	// Emulators are FIRESTORE_EMULATOR_HOST=… and PUBSUB_EMULATOR_HOST=…; nil: the shared ones.
	Emulators []string
	// OwnEmulators lets dev start its own emulators, as `make dev` does: it keeps Firestore's
	// documents in UPDRAFT_HOME and starts a JVM that dies again (its Keeper).
	OwnEmulators bool
	// DAGs are file name → YAML, written into the DAG folder before dev starts.
	DAGs map[string]string
}

// newWork returns a test's work folder and writes the task helper script into it.
func newWork(t *testing.T) string {
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "soak.sh"), []byte(soakScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return work
}

// startStack starts `updraft dev --tick 1` and waits until /healthz answers and every DAG
// file's DAG is deployed. Cleanup stops it by its process group, even on failure.
func startStack(t *testing.T, work string, opt stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, home: t.TempDir(), dagDir: filepath.Join(t.TempDir(), "dags"), work: work, exited: make(chan struct{})}
	s.logPath = filepath.Join(s.home, "dev.log")
	if err := os.MkdirAll(s.dagDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for name, src := range opt.DAGs {
		s.writeDAG(name, src)
		ids = append(ids, dagID(src))
	}
	if len(opt.DAGs) > 0 {
		if out, err := exec.Command(updraftBin, "dags", "validate", s.dagDir).CombinedOutput(); err != nil {
			t.Fatalf("the test's own DAG files do not validate (a bug in the test, or a changed DAG format): %v\n%s", err, out)
		}
	}
	s.addr = freeAddr(t)
	emu := opt.Emulators
	if emu == nil && !opt.OwnEmulators {
		emu = sharedEmulators
	}
	// A project per test (subtests included): the stacks share the emulators.
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	project := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(project) > 15 { // project ids have at most 30 characters
		project = project[:15]
	}
	project = fmt.Sprintf("soak-%s-%08x", strings.TrimRight(project, "-"), h.Sum32())
	s.env = append(cleanEnv(), "UPDRAFT_HOME="+s.home)
	s.env = append(s.env, emu...)
	devEnv := append(append([]string{}, s.env...), opt.Env...)
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(updraftBin, "dev", "--addr", s.addr, "--tick", "1", "--project", project, s.dagDir)
	s.cmd.Env, s.cmd.Stdout, s.cmd.Stderr, s.cmd.Dir = devEnv, logf, logf, repoRoot
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	t.Cleanup(s.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("updraft dev's log (%s), last lines after its banner:\n%s", s.logPath, tail(s.logPath, 40))
		}
	})
	start := time.Now()
	s.waitFor("updraft dev to answer /healthz", 3*time.Minute, func() (bool, string) {
		code, _, err := s.get("/healthz")
		return code == 200, fmt.Sprint(code, err)
	})
	for _, id := range ids {
		s.waitDeployed(id, 2*time.Minute)
	}
	t.Logf("updraft dev up in %s at http://%s (project %s, home %s)", time.Since(start).Round(100*time.Millisecond), s.addr, project, s.home)
	return s
}

// cleanEnv is this process's environment without what would point the stack elsewhere.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "UPDRAFT_HOME", "UPDRAFT_API",
			"UPDRAFT_LEASE", "UPDRAFT_REPUBLISH_AFTER", "UPDRAFT_START_GRACE", "UPDRAFT_WORKER_CMD":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// stop ends dev: SIGTERM to its process group, SIGKILL after 20 s.
func (s *stack) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.t.Logf("updraft dev did not stop within 20 s of SIGTERM: SIGKILL")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Workers run in process groups of their own: the ones dev did not stop are killed here.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (s *stack) writeDAG(name, src string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dagDir, name), []byte(src), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// waitDeployed waits until GET /api/v1/dags/ID answers 200.
func (s *stack) waitDeployed(id string, within time.Duration) {
	s.t.Helper()
	s.waitFor("DAG "+id+" to be deployed", within, func() (bool, string) {
		code, body, err := s.get("/api/v1/dags/" + url.PathEscape(id))
		return code == 200, fmt.Sprintf("%d %v %.200s", code, err, body)
	})
}

// waitFor polls cond every 200 ms until it holds, failing the test after within with what
// cond last said, or at once if dev exited.
func (s *stack) waitFor(what string, within time.Duration, cond func() (bool, string)) {
	s.t.Helper()
	if err := s.poll(what, within, cond); err != nil {
		s.t.Fatal(err)
	}
}

// poll is waitFor returning the failure instead, so a test can report what it measured.
func (s *stack) poll(what string, within time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("updraft dev exited (%v) while waiting for %s; last: %s", s.cmd.ProcessState, what, why)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s waiting for %s; last: %s", within, what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// get GETs a path of the dev server.
func (s *stack) get(path string) (int, []byte, error) {
	resp, err := httpClient.Get("http://" + s.addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// getJSON GETs a path and decodes a 200 answer into v.
func (s *stack) getJSON(path string, v any) error {
	code, b, err := s.get(path)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("GET %s: %d %.300s", path, code, b)
	}
	return json.Unmarshal(b, v)
}

// cli runs `updraft ARGS…` against this stack (it finds it through UPDRAFT_HOME's dev.json).
func (s *stack) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, updraftBin, args...)
	cmd.Env, cmd.Dir = s.env, repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustCLI runs the CLI with a 2-minute bound and fails the test on an error.
func (s *stack) mustCLI(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := s.cli(ctx, args...)
	if err != nil {
		s.t.Fatalf("updraft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// trigger runs `updraft trigger DAG` and returns the run id it prints.
func (s *stack) trigger(dag string) string {
	s.t.Helper()
	out := s.mustCLI("trigger", dag)
	for _, f := range strings.Fields(out) {
		if d, run, ok := strings.Cut(f, "/"); ok && d == dag {
			return run
		}
	}
	s.t.Fatalf("updraft trigger %s printed no run: %q", dag, out)
	return ""
}

// runDetail is the API's RunDetail, as far as the tests read it.
type runDetail struct {
	RunID             string      `json:"run_id"`
	State             string      `json:"state"`
	LogicalDate       time.Time   `json:"logical_date"`
	StartedAt         *time.Time  `json:"started_at"`
	EndedAt           *time.Time  `json:"ended_at"`
	DataIntervalStart time.Time   `json:"data_interval_start"`
	DataIntervalEnd   time.Time   `json:"data_interval_end"`
	Tasks             []taskState `json:"tasks"`
	Attempts          []attempt   `json:"attempts"`
}

type taskState struct {
	TaskID    string     `json:"task_id"`
	State     string     `json:"state"`
	Try       int        `json:"try"`
	Error     string     `json:"error"`
	StartedAt *time.Time `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
}

type attempt struct {
	AttemptID string          `json:"attempt_id"`
	TaskID    string          `json:"task_id"`
	Try       int             `json:"try"`
	State     string          `json:"state"`
	Error     string          `json:"error"`
	StartedAt *time.Time      `json:"started_at"`
	EndedAt   *time.Time      `json:"ended_at"`
	XCom      json.RawMessage `json:"xcom"`
}

func (r *runDetail) task(id string) taskState {
	for _, t := range r.Tasks {
		if t.TaskID == id {
			return t
		}
	}
	return taskState{TaskID: id, State: "(absent)"}
}

func (r *runDetail) finished() bool { return r.State == "success" || r.State == "failed" }

// run reads a run through the API.
func (s *stack) run(dag, runID string) (*runDetail, error) {
	var r runDetail
	err := s.getJSON("/api/v1/dags/"+url.PathEscape(dag)+"/runs/"+url.PathEscape(runID), &r)
	return &r, err
}

// waitRun waits until a run is finished and returns it. Past the bound it fails the test
// but returns the run as last read, so the test still reports what it can.
func (s *stack) waitRun(dag, runID string, within time.Duration) *runDetail {
	s.t.Helper()
	var r *runDetail
	err := s.poll("run "+dag+"/"+runID+" to finish", within, func() (bool, string) {
		got, err := s.run(dag, runID)
		if err != nil {
			return false, err.Error()
		}
		r = got
		return r.finished(), "state " + r.State + " " + summarise(r)
	})
	if err != nil && r == nil {
		s.t.Fatal(err)
	}
	if err != nil {
		s.t.Error(err)
	}
	return r
}

// summarise counts a run's tasks by state.
func summarise(r *runDetail) string {
	n := map[string]int{}
	for _, t := range r.Tasks {
		n[t.State]++
	}
	b, _ := json.Marshal(n)
	return string(b)
}

// runBrief is one run of the API's run list.
type runBrief struct {
	RunID       string     `json:"run_id"`
	State       string     `json:"state"`
	LogicalDate time.Time  `json:"logical_date"`
	StartedAt   *time.Time `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at"`
}

// runs lists every run of a DAG through the API, page by page.
func (s *stack) runs(dag string) ([]runBrief, error) {
	var all []runBrief
	token := ""
	for {
		var page struct {
			Runs []runBrief `json:"runs"`
			Next string     `json:"next_page_token"`
		}
		q := "?limit=500"
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		if err := s.getJSON("/api/v1/dags/"+url.PathEscape(dag)+"/runs"+q, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Runs...)
		if page.Next == "" {
			return all, nil
		}
		token = page.Next
	}
}

// attemptDetail reads one try of a task through the API.
func (s *stack) attemptDetail(dag, runID, task string, try int) (*attempt, error) {
	var a attempt
	err := s.getJSON(fmt.Sprintf("/api/v1/dags/%s/runs/%s/tasks/%s/attempts/%d", url.PathEscape(dag), url.PathEscape(runID), url.PathEscape(task), try), &a)
	return &a, err
}

// freeAddr returns 127.0.0.1:PORT with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	text := string(b)
	if _, after, ok := strings.Cut(text, "Ctrl-C stops everything"); ok { // skip dev's banner
		_, text, _ = strings.Cut(after, "\n")
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	return strings.Join(lines, "\n")
}

// dagID reads the `id:` line of a DAG's YAML.
func dagID(src string) string {
	for _, l := range strings.Split(src, "\n") {
		if v, ok := strings.CutPrefix(l, "id: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// envInt reads a positive integer knob, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive integer", name, v)
	}
	return n
}

// envDuration reads a duration knob, or def.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q is not a positive duration like 90s", name, v)
	}
	return d
}
