package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/emulators"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// executorSaying is an executor whose every worker is alive (or every one gone).
type executorSaying bool

func (x executorSaying) Alive(context.Context, string) (bool, error) { return bool(x), nil }
func (executorSaying) Cancel(context.Context, string) error          { return nil }

const oneTask = `id: one
owner: owner@example.com
tasks:
  - {id: a, type: test.ok, retries: 1, retry_delay: 0s}
`

// The tick, finding a live worker's lease lapsed, moves the attempt's follow-up on: the
// worker's renewals and its result still go through (they re-read the attempt, see it is
// still theirs, and write again) rather than being mistaken for stale.
func TestLiveWorkerKeepsItsAttemptWhenTheTickTouchesIt(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	b.eng.SetExecutor(executorSaying(true))
	b.deploy(t, oneTask)
	r := b.trigger(t, "one")
	ref := b.ref(t, r, "a")
	claim, err := b.eng.Claim(b.ctx, ref, engine.Worker{Name: "w", ExecutorRef: "alive"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b.clock.Add(3 * time.Second) // the lease lapses; the executor says the worker lives
		if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 0 {
			t.Fatalf("tick: lost %d (%v)", rep.LostWorkers, err)
		}
		if err := claim.Renew(b.ctx); err != nil {
			t.Fatalf("renewal after the tick touched the attempt: %v", err)
		}
	}
	b.clock.Add(3 * time.Second)
	if _, err := b.eng.Tick(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatalf("result after the tick touched the attempt: %v", err)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s; want success", s)
	}
}

// A renewal that finds the attempt declared lost, or its task instance cleared, says stale,
// so the worker stops the task.
func TestRenewalSaysStaleOnceTheAttemptIsNotOurs(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	b.eng.SetExecutor(executorSaying(false))
	b.deploy(t, oneTask)
	r := b.trigger(t, "one")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w", ExecutorRef: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Add(3 * time.Second)
	if rep, err := b.eng.Tick(b.ctx); err != nil || rep.LostWorkers != 1 {
		t.Fatalf("tick: lost %d (%v)", rep.LostWorkers, err)
	}
	if err := claim.Renew(b.ctx); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("renewal of a lost attempt: %v; want ErrStale", err)
	}
	// The retry, claimed, then its task cleared: its renewal is stale too.
	claim2, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	if err := claim2.Renew(b.ctx); !errors.Is(err, engine.ErrStale) {
		t.Fatalf("renewal of a cleared task's attempt: %v; want ErrStale", err)
	}
}

// proxy forwards TCP to the Firestore emulator and can be cut (every connection dropped,
// new ones refused) and restored on the same port.
type proxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Error(err)
		return
	}
	p.serve(ln)
}

// A worker's store behind a proxy the test can cut (not parallel: it points the client
// library at the proxy while opening the store).
func storeBehindProxy(t *testing.T, project string) (*fsstore.Store, *proxy) {
	set, ok := emulators.FromEnv()
	if !ok {
		t.Fatal("emulators not in the environment")
	}
	p := startProxy(t, set.Firestore.Host)
	t.Setenv(emulators.FirestoreHostEnv, p.addr)
	st, err := fsstore.Open(context.Background(), project)
	os.Setenv(emulators.FirestoreHostEnv, set.Firestore.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, p
}

// Firestore unreachable when the result is written: the write is retried and lands once
// Firestore is back; unreachable for good, the worker gets an error that is not "stale"
// (it exits non-zero), and the attempt stays running for the tick to judge.
func TestResultWriteSurvivesAnOutageAndNeverPassesForStale(t *testing.T) {
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	st, p := storeBehindProxy(t, b.project)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	workerEng := engine.New(st, b.queue, engine.Config{Lease: 2 * time.Second}, b.clock.Now, log)
	b.deploy(t, `id: two
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
  - {id: b, type: test.ok}
`)
	r := b.trigger(t, "two")

	claim, err := workerEng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	p.cut()
	time.AfterFunc(1500*time.Millisecond, func() { p.restore(t) }) // the outage to ride out
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess}); err != nil {
		t.Fatalf("result after a 1.5 s outage: %v; want recorded", err)
	}
	if s := b.ti(t, r, "a").State; s != scheduler.TaskSuccess {
		t.Fatalf("a is %s; want success", s)
	}

	claim, err = workerEng.Claim(b.ctx, b.ref(t, r, "b"), engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	p.cut() // for good
	err = claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptSuccess})
	if err == nil || errors.Is(err, engine.ErrStale) || !strings.Contains(err.Error(), "record result") {
		t.Fatalf("result with Firestore gone: %v; want a recording error, not stale", err)
	}
	a, _ := b.store.GetAttempt(b.ctx, claim.Ref)
	if a.Rec.State != scheduler.AttemptRunning {
		t.Fatalf("attempt is %s; want running, for the tick to judge", a.Rec.State)
	}
}

// A worker whose attempt is cleared under it (no executor here to cancel it) learns so at
// its next renewal and stops its task, process and all.
func TestRenewalStopsATaskWhoseAttemptWasCleared(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{Lease: 2 * time.Second})
	pidFile := filepath.Join(t.TempDir(), "pid")
	b.deploy(t, fmt.Sprintf(`id: cleared
owner: owner@example.com
tasks:
  - {id: a, type: shell, with: {command: "echo $$ > %s; sleep 600"}}
`, pidFile))
	r := b.trigger(t, "cleared")
	ref := b.ref(t, r, "a")
	done := make(chan error, 1)
	go func() { done <- b.worker.Execute(b.ctx, ref) }()
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the task did not start")
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			fmt.Sscan(string(b), &pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a file the task writes
	}
	if _, err := b.eng.ClearTasks(b.ctx, r.DagID, r.RunID, []string{"a"}, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("execute: %v; want nil (the result does not stand, and that is no error)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the worker kept running a cleared attempt")
	}
	if syscall.Kill(pid, 0) == nil && !strings.Contains(readStat(pid), ") Z") {
		t.Fatalf("the cleared task's shell %d still runs", pid)
	}
	a, _ := b.store.GetAttempt(b.ctx, ref)
	if a.Rec.State != scheduler.AttemptFailed || !strings.Contains(a.Rec.Error, "no longer current") {
		t.Fatalf("attempt %s %q; want failed, stopped as no longer current", a.Rec.State, a.Rec.Error)
	}
}

func readStat(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return string(b)
}

// A task whose error is megabytes long still records its result (cut, on a character
// boundary), and the run goes on: the instance holding the attempt stays writable.
func TestHugeErrorIsCutNotFatal(t *testing.T) {
	t.Parallel()
	b := setup(t, engine.Config{})
	b.deploy(t, `id: loud
owner: owner@example.com
tasks:
  - {id: a, type: test.ok}
`)
	r := b.trigger(t, "loud")
	claim, err := b.eng.Claim(b.ctx, b.ref(t, r, "a"), engine.Worker{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("ü", 1<<20) // 2 MiB
	if err := claim.Finish(b.ctx, engine.Result{State: scheduler.AttemptFailed, Error: huge}); err != nil {
		t.Fatalf("finish with a 2 MiB error: %v", err)
	}
	ti := b.ti(t, r, "a")
	if ti.State != scheduler.TaskFailed || len(ti.Error) > engine.MaxErrorBytes+4 || !strings.HasPrefix(ti.Error, "üü") {
		t.Fatalf("instance %s with a %d-byte error; want failed with it cut to %d", ti.State, len(ti.Error), engine.MaxErrorBytes)
	}
	if !utf8.ValidString(ti.Error) {
		t.Fatal("the error was cut inside a character")
	}
	if st := b.runState(t, r); st != scheduler.RunFailed {
		t.Fatalf("run is %s; want failed", st)
	}
}
