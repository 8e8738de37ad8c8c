package bqemu

import (
	"github.com/updraft-dev/updraft/emulators/internal/proc"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/option"
)

const (
	// EnvVar is the variable naming the emulator's REST host ("127.0.0.1:PORT")
	// for Updraft's BigQuery code. The client library does not read it itself:
	// see ClientOptions.
	EnvVar = "BIGQUERY_EMULATOR_HOST"

	// StartTimeout bounds the wait for the emulator to answer after start
	// (the caller's context can shorten it).
	StartTimeout = 60 * time.Second
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
	StopGrace = 5 * time.Second

	loopback     = "127.0.0.1"
	pollInterval = 25 * time.Millisecond
)

// Emulator is a running BigQuery emulator started by Start.
type Emulator struct {
	// Project is the one project the emulator serves.
	Project string
	// Host is the REST endpoint's "127.0.0.1:PORT" (the BigQuery API v2);
	// it is the value of EnvVar. It is the emulator's front (front.go), which
	// gives it BigQuery's behaviour where Updraft depends on it.
	Host string
	// RawHost is the emulator's own REST endpoint, without the front.
	RawHost string
	// GRPCHost is the BigQuery Storage API's "127.0.0.1:PORT".
	GRPCHost string
	// LogPath is the file holding the emulator's stdout and stderr.
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and was reaped
	waitErr error         // valid after done is closed
	rmDir   string        // the folder Start made for the data (and the log when none was given)

	front    *front
	stopOnce sync.Once
	stopErr  error
}

// ClientOptions connect a cloud.google.com/go/bigquery client to the emulator:
// its REST endpoint over plain HTTP, without credentials.
func (e *Emulator) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint("http://" + e.Host), option.WithoutAuthentication()}
}

// Env is the environment a worker needs to reach the emulator.
func (e *Emulator) Env() []string { return []string{EnvVar + "=" + e.Host} }

// PID is the emulator's process id, which is also its process group id.
func (e *Emulator) PID() int {
	if e == nil || e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// Done is closed when the emulator process has exited, for any reason.
func (e *Emulator) Done() <-chan struct{} { return e.done }

// Start runs the emulator (building it first if needed, see EnsureBuilt) for
// project, in its own process group, on ports of 127.0.0.1 that the kernel
// picks (the emulator prints where it listens), and returns once its REST
// API answers. logDir receives bigquery.log ("" keeps it with the data). The
// data lives in a SQLite file in a temporary folder that Stop removes.
func Start(ctx context.Context, project, logDir string) (*Emulator, error) {
	if project == "" {
		return nil, errors.New("bqemu: Start needs a project id")
	}
	bin, err := EnsureBuilt(ctx)
	if err != nil {
		return nil, err
	}
	e := &Emulator{Project: project, done: make(chan struct{})}
	// A folder of our own for the emulator's SQLite file (left to itself, the emulator puts
	// it in $TMPDIR and does not always delete it), removed by Stop.
	if e.rmDir, err = os.MkdirTemp("", "updraft-bigquery-*"); err != nil {
		return nil, fmt.Errorf("bqemu: %w", err)
	}
	if logDir == "" {
		logDir = e.rmDir
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		e.cleanup()
		return nil, fmt.Errorf("bqemu: %w", err)
	}
	e.LogPath = filepath.Join(logDir, "bigquery.log")
	logf, err := os.OpenFile(e.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		e.cleanup()
		return nil, fmt.Errorf("bqemu: %w", err)
	}

	args := []string{"--project=" + project, "--host=" + loopback, "--port=0", "--grpc-port=0",
		"--database=" + filepath.Join(e.rmDir, "bigquery.sqlite"), "--log-level=warn"}
	cmdline := bin + " " + strings.Join(args, " ")
	fmt.Fprintln(logf, cmdline)

	// stdout goes through a pipe so we can read the bound addresses; stderr
	// straight to the log.
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		e.cleanup()
		return nil, fmt.Errorf("bqemu: %w", err)
	}
	e.cmd = exec.Command(bin, args...)
	e.cmd.Dir = logDir
	e.cmd.Stdout, e.cmd.Stderr = pw, logf
	e.cmd.Env = append(os.Environ(), "TMPDIR="+e.rmDir)
	err = proc.Start(e.cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		logf.Close()
		e.cleanup()
		return nil, fmt.Errorf("bqemu: start %s: %w", cmdline, err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.done)
	}()
	addrs := make(chan [2]string, 1)
	go copyStdout(pr, logf, addrs)

	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := e.waitReady(ctx, addrs); err != nil {
		log, _ := os.ReadFile(e.LogPath)
		_ = e.Stop()
		return nil, fmt.Errorf("bqemu: %s: %w; its log:\n%s", cmdline, err, tail(string(log), 20))
	}
	f, err := startFront(e.Host)
	if err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.front, e.RawHost, e.Host = f, e.Host, f.host()
	return e, nil
}

// copyStdout copies the emulator's stdout into the log (and closes it) and reports the REST
// and gRPC addresses from the lines the emulator prints once bound:
//
//	[bigquery-emulator] REST server listening at 127.0.0.1:PORT
//	[bigquery-emulator] gRPC server listening at 127.0.0.1:PORT
func copyStdout(r io.ReadCloser, log *os.File, addrs chan<- [2]string) {
	defer r.Close()
	defer log.Close()
	var rest, grpc string
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(log, line)
		if a, ok := strings.CutPrefix(line, "[bigquery-emulator] REST server listening at "); ok {
			rest = strings.TrimSpace(a)
		}
		if a, ok := strings.CutPrefix(line, "[bigquery-emulator] gRPC server listening at "); ok {
			grpc = strings.TrimSpace(a)
		}
		if !sent && rest != "" && grpc != "" {
			addrs <- [2]string{rest, grpc}
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// waitReady waits for the emulator to print its addresses, then polls its
// REST API (datasets.list of the project) until it answers 200.
func (e *Emulator) waitReady(ctx context.Context, addrs <-chan [2]string) error {
	select {
	case a := <-addrs:
		e.Host, e.GRPCHost = a[0], a[1]
	case <-e.done:
		return fmt.Errorf("the emulator exited before listening (%v)", e.waitErr)
	case <-ctx.Done():
		return fmt.Errorf("the emulator printed no listening address: %w", ctx.Err())
	}
	url := "http://" + e.Host + "/bigquery/v2/projects/" + e.Project + "/datasets"
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-tick.C:
		case <-e.done:
			return fmt.Errorf("the emulator exited (%v)", e.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("the emulator did not answer (%v): %w", last, ctx.Err())
		}
	}
}

// Stop stops the emulator: SIGTERM to its process group, SIGKILL after
// StopGrace, then waits until it is reaped. It is idempotent and safe for
// concurrent use; later calls return the first call's result. It returns an
// error if the emulator had died on its own before.
func (e *Emulator) Stop() error {
	if e == nil || e.cmd == nil {
		return nil
	}
	e.stopOnce.Do(func() { e.stopErr = e.stop() })
	return e.stopErr
}

func (e *Emulator) stop() error {
	defer e.cleanup()
	select {
	case <-e.done:
		log, _ := os.ReadFile(e.LogPath)
		return fmt.Errorf("bqemu: the emulator had already exited: %v; its log:\n%s", e.waitErr, tail(string(log), 20))
	default:
	}
	pid := e.PID()
	_ = proc.TerminateGroup(pid)
	t := time.NewTimer(StopGrace)
	defer t.Stop()
	select {
	case <-e.done:
	case <-t.C:
		_ = proc.KillGroup(pid)
		<-e.done
	}
	// Anything else left in the group (the emulator starts no children).
	_ = proc.KillGroup(pid)
	return nil
}

func (e *Emulator) cleanup() {
	if e.front != nil {
		_ = e.front.close()
	}
	if e.rmDir != "" {
		_ = os.RemoveAll(e.rmDir)
	}
}
