package functions_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/emulators"
	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	"github.com/updraft-dev/updraft/emulators/emutest"
	"github.com/updraft-dev/updraft/functions"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/local/localtest"
	"github.com/updraft-dev/updraft/internal/psqueue"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

var (
	workerBin string
	cloudRun  *runemu.Server
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "updraft-functions-test-")
	if err != nil {
		panic(err)
	}
	workerBin = filepath.Join(dir, "updraft-worker")
	if out, err := exec.Command("go", "build", "-o", workerBin, "github.com/updraft-dev/updraft/cmd/updraft-worker").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build updraft-worker: %v\n%s", err, out)
		os.Exit(2)
	}
	if cloudRun, err = runemu.Start(runemu.Config{KillGrace: time.Second}, filepath.Join(dir, "cloudrun")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer os.RemoveAll(dir)
	defer cloudRun.Stop()
	emutest.Main(m)
}

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// bundle is one test's world: its own project on the emulators, its own worker jobs on the
// Cloud Run stand-in (PREFIX-small runs the real worker binary), and the environment a
// function service gets on GCP.
type bundle struct {
	ctx     context.Context
	project string
	prefix  string
	st      *fsstore.Store
	q       *psqueue.Queue
	eng     *engine.Engine
	env     map[string]string
	logs    *localtest.SyncBuffer
	log     *slog.Logger
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	project := emutest.Project(t)
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	prefix := "w" + hex.EncodeToString(rnd[:])
	jobEnv := map[string]string{"GOOGLE_CLOUD_PROJECT": project}
	for _, kv := range set.Env() {
		k, v, _ := strings.Cut(kv, "=")
		jobEnv[k] = v
	}
	cloudRun.SetJob(prefix+"-small", runemu.JobSpec{Command: []string{workerBin}, Env: jobEnv})
	st, err := fsstore.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	q, err := psqueue.Open(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	logs := &localtest.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return &bundle{
		ctx: ctx, project: project, prefix: prefix, st: st, q: q, eng: engine.New(st, q, engine.Config{}, nil, log),
		env: map[string]string{"GOOGLE_CLOUD_PROJECT": project, runemu.EnvVar: cloudRun.Addr, "UPDRAFT_WORKER_JOB_PREFIX": prefix,
			taskrun.EnvHTTPAllow: "loopback"}, // the tests' APIs listen on 127.0.0.1
		logs: logs, log: log,
	}
}

func (b *bundle) getenv(k string) string {
	if v, ok := b.env[k]; ok {
		return v
	}
	return os.Getenv(k)
}

// handler builds a target as the service does, from the environment.
func (b *bundle) handler(t testing.TB, target string) http.Handler {
	t.Helper()
	h, release, err := functions.NewHandler(b.ctx, target, b.getenv, b.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return h
}

func (b *bundle) deploy(t testing.TB, src string) {
	t.Helper()
	d, err := dag.Parse("test.yaml", []byte(src), dag.Options{
		ValidateCron: func(s string) error { _, err := schedule.ParseCron(s); return err },
	})
	if err != nil {
		t.Fatalf("parse DAG: %v", err)
	}
	if _, err := b.eng.Deploy(b.ctx, d, []byte(src)); err != nil {
		t.Fatalf("deploy: %v", err)
	}
}

func (b *bundle) trigger(t testing.TB, dagID string, at time.Time) *scheduler.Run {
	t.Helper()
	r, err := b.eng.Trigger(b.ctx, dagID, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (b *bundle) ti(t testing.TB, r *scheduler.Run, task string) scheduler.TaskInstance {
	t.Helper()
	v, err := b.st.GetTaskInstance(b.ctx, r.DagID, r.RunID, task)
	if err != nil {
		t.Fatalf("task instance %s: %v", task, err)
	}
	return v.Rec
}

// message is the tasks topic's message for a queued task, as the engine publishes it.
func (b *bundle) message(t testing.TB, r *scheduler.Run, task, typ, resources string, timeout time.Duration) []byte {
	t.Helper()
	ti := b.ti(t, r, task)
	if ti.State != scheduler.TaskQueued {
		t.Fatalf("%s is %s; want queued", task, ti.State)
	}
	data, _ := json.Marshal(scheduler.TaskMessage{
		AttemptRef: scheduler.AttemptRef{DagID: r.DagID, RunID: r.RunID, TaskID: task, TryNumber: ti.TryNumber, AttemptID: ti.AttemptID},
		Type:       typ, Resources: resources, TimeoutSeconds: int(timeout / time.Second),
	})
	return data
}

// waitTask polls a task instance until it reaches a finished state (bounded).
func (b *bundle) waitTask(t testing.TB, r *scheduler.Run, task string) scheduler.TaskInstance {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ti := b.ti(t, r, task)
		if ti.State.Finished() {
			return ti
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %s", task, ti.State)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Payload shapes a function receives a Pub/Sub message in.
const (
	shapePush       = "push envelope"
	shapeBinary     = "binary CloudEvent"
	shapeStructured = "structured CloudEvent"
)

var shapes = []string{shapePush, shapeBinary, shapeStructured}

// request wraps message data in one of the shapes, as the Pub/Sub emulator pushes it or as
// Eventarc delivers it.
func request(shape string, data []byte) *http.Request {
	published := fmt.Sprintf(`{"message":{"data":%q,"attributes":{},"messageId":"42","publishTime":"2025-01-10T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}`,
		base64.StdEncoding.EncodeToString(data))
	var r *http.Request
	switch shape {
	case shapeBinary:
		r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(published))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Ce-Specversion", "1.0")
		r.Header.Set("Ce-Id", "42")
		r.Header.Set("Ce-Type", "google.cloud.pubsub.topic.v1.messagePublished")
		r.Header.Set("Ce-Source", "//pubsub.googleapis.com/projects/p/topics/t")
	case shapeStructured:
		r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"specversion":"1.0","id":"42",`+
			`"type":"google.cloud.pubsub.topic.v1.messagePublished","source":"//pubsub.googleapis.com/projects/p/topics/t",`+
			`"datacontenttype":"application/json","data":`+published+`}`))
		r.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	default:
		r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(published))
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// serve sends one request to a handler and returns the status code.
func serve(h http.Handler, r *http.Request) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code
}

func rawRequest(body string, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewBufferString(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}
