package emulators

import (
	"github.com/updraft-dev/updraft/emulators/internal/proc"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// StartTimeout bounds the wait for an emulator to answer after its JVM
	// was started (the caller's context can shorten it).
	StartTimeout = 60 * time.Second
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL (a
	// JVM exits within ~0.5 s of SIGTERM). It is stopGraceCDS when the JVM
	// writes its class-data-sharing archive at exit (first run only, ~4 s).
	StopGrace    = 5 * time.Second
	stopGraceCDS = 60 * time.Second

	// JavaOptsEnv holds extra JVM flags (space separated) appended after
	// the defaults, e.g. "-Xmx512m" or "-XX:TieredStopAtLevel=4".
	JavaOptsEnv = "UPDRAFT_EMULATOR_JAVA_OPTS"

	loopback     = "127.0.0.1"
	pollInterval = 25 * time.Millisecond
	maxAttempts  = 3
)

// defaultJVMFlags make the JVMs start faster and use less memory:
// C1-only JIT (-XX:TieredStopAtLevel=1) and no hsperfdata file in /tmp
// (-XX:-UsePerfData). -Duser.language=en is what the SDK's Firestore wrapper
// passes ("the emulator currently only supports English error messages").
var defaultJVMFlags = []string{
	"-Duser.language=en",
	"-XX:TieredStopAtLevel=1",
	"-XX:-UsePerfData",
}

// Emulator is one emulator: a running JVM started by this package, or (see
// FromEnv) one that was already running, in which case it has no process and
// Stop does nothing.
type Emulator struct {
	// Name is "firestore" or "pubsub".
	Name string
	// Host is where the emulator listens: "127.0.0.1:PORT".
	Host string
	// LogPath is the file receiving the emulator's stdout and stderr ("" if
	// the emulator was not started by this package).
	LogPath string

	cmd     *exec.Cmd
	cmdline string
	// What Restart needs to start the same emulator again on the same ports.
	inst    *installation
	sp      spec
	ports   []int
	logDir  string
	dataDir string // Firestore snapshots (see FirestoreOptions), or ""

	done    chan struct{} // closed when the process has exited and was reaped
	waitErr error         // valid after done is closed
	cds     *cdsPlan

	stopOnce sync.Once
	stopErr  error
}

// PID returns the process id of the JVM, which is also its process group id,
// or 0 if the emulator was not started by this package.
func (e *Emulator) PID() int {
	if e == nil || e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// Done returns a channel closed when the emulator process has exited (for
// any reason, including Stop). For an emulator not started by this package it
// returns nil, a channel that is never closed.
func (e *Emulator) Done() <-chan struct{} {
	if e == nil || e.cmd == nil {
		return nil
	}
	return e.done
}

// Stop stops the emulator: SIGTERM to its whole process group, SIGKILL after
// StopGrace, then waits for the JVM to be reaped. It is idempotent and safe
// for concurrent use; later calls return the first call's result. It returns
// an error if the emulator had already died before Stop was called.
func (e *Emulator) Stop() error {
	if e == nil || e.cmd == nil {
		return nil
	}
	e.stopOnce.Do(func() { e.stopErr = e.stop() })
	return e.stopErr
}

func (e *Emulator) stop() error {
	pid := e.PID()
	select {
	case <-e.done:
		// Died on its own: that is worth reporting.
		e.cds.finish(false)
		return fmt.Errorf("%s emulator (pid %d) had already exited before Stop: %v%s", e.Name, pid, e.waitErr, e.logTail())
	default:
	}
	var errs []error
	if err := proc.TerminateGroup(pid); err != nil {
		errs = append(errs, fmt.Errorf("SIGTERM to process group %d: %w", pid, err))
	}
	clean := true
	grace := StopGrace
	if e.cds != nil && e.cds.tmp != "" {
		grace = stopGraceCDS
	}
	select {
	case <-e.done:
	case <-time.After(grace):
		clean = false
		if err := proc.KillGroup(pid); err != nil {
			errs = append(errs, fmt.Errorf("SIGKILL to process group %d: %w", pid, err))
		}
		select {
		case <-e.done:
		case <-time.After(StopGrace):
			errs = append(errs, fmt.Errorf("process %d still not reaped %s after SIGKILL", pid, StopGrace))
		}
	}
	e.cds.finish(clean)
	if len(errs) > 0 {
		return fmt.Errorf("stopping %s emulator: %w", e.Name, errors.Join(errs...))
	}
	return nil
}

// WaitReady polls the emulator's HTTP endpoint until it answers "Ok", the
// context ends, or (for an emulator started by this package) the process
// exits.
func (e *Emulator) WaitReady(ctx context.Context) error {
	err := waitHTTPOk(ctx, e.Host, e.Done())
	if errors.Is(err, errExited) {
		return fmt.Errorf("%s emulator exited: %v%s", e.Name, e.waitErr, e.logTail())
	}
	return err
}

// errExited is returned by waitHTTPOk when the process died.
var errExited = errors.New("process exited")

func waitHTTPOk(ctx context.Context, host string, exited <-chan struct{}) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	// Wait for the port to accept connections first: a bare TCP connect is
	// cheap and, unlike an HTTP request, is not logged by the emulator.
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %w", host, context.Cause(ctx))
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	url := "http://" + host + "/"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "Ok" {
				return nil
			}
			last = fmt.Sprintf("GET %s: %s %q", url, resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (last answer: %s): %w", host, last, context.Cause(ctx))
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
}

// waitOwned waits until process pid listens on all ports itself (see
// ownsListeners).
func waitOwned(ctx context.Context, pid int, ports []int, exited <-chan struct{}) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !ownsListeners(pid, ports) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("ports %v answer but are not all listened on by process %d: %w", ports, pid, context.Cause(ctx))
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
	return nil
}

// spec describes how to run one emulator.
type spec struct {
	name  string
	jar   string
	main  string // main class, or "" for -jar
	ports int    // number of ports to allocate; the first is the API port
	args  func(ports []int) []string
	// dataDir, for Firestore, holds snapshots: the latest is imported at start.
	dataDir string
}

func firestoreSpec(inst *installation) spec {
	return spec{
		name:  "firestore",
		jar:   inst.firestoreJar,
		main:  firestoreMainClass,
		ports: 3,
		args: func(p []int) []string {
			// In memory; persistence is Export's snapshots, the latest
			// imported here (--export-on-exit only works on a clean exit).
			return []string{"start",
				"--host=" + loopback,
				"--port=" + strconv.Itoa(p[0]),
				"--websocket_port=" + strconv.Itoa(p[1]),
				"--webchannel_port=" + strconv.Itoa(p[2]),
				"--database-mode=firestore-native",
			}
		},
	}
}

func pubsubSpec(inst *installation) spec {
	return spec{
		name:  "pubsub",
		jar:   inst.pubsubJar,
		ports: 1,
		args: func(p []int) []string {
			return []string{"--host=" + loopback, "--port=" + strconv.Itoa(p[0])}
		},
	}
}

// StartFirestore starts the Firestore emulator (native mode, in memory) on
// free loopback ports and waits until it answers. logDir receives its output
// (firestore.log); "" means a new temporary directory.
func StartFirestore(ctx context.Context, logDir string) (*Emulator, error) {
	inst, err := resolveAll()
	if err != nil {
		return nil, err
	}
	return start(ctx, inst, firestoreSpec(inst), logDir)
}

// StartPubSub starts the Pub/Sub emulator on a free loopback port and waits
// until it answers. logDir receives its output (pubsub.log); "" means a new
// temporary directory.
func StartPubSub(ctx context.Context, logDir string) (*Emulator, error) {
	inst, err := resolveAll()
	if err != nil {
		return nil, err
	}
	return start(ctx, inst, pubsubSpec(inst), logDir)
}

func start(ctx context.Context, inst *installation, sp spec, logDir string) (*Emulator, error) {
	if logDir == "" {
		d, err := os.MkdirTemp("", "updraft-emulators-")
		if err != nil {
			return nil, err
		}
		logDir = d
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logDir, err := filepath.Abs(logDir)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		e, retry, err := startOnce(ctx, inst, sp, logDir, attempt == 1)
		if err == nil {
			return e, nil
		}
		if !retry || attempt == maxAttempts || ctx.Err() != nil {
			return nil, err
		}
	}
}

// startOnce starts the JVM and waits for readiness. retry reports whether
// another attempt may succeed (port taken meanwhile, or the CDS archive was
// involved).
func startOnce(ctx context.Context, inst *installation, sp spec, logDir string, useCDS bool) (_ *Emulator, retry bool, _ error) {
	ports, err := freePorts(sp.ports)
	if err != nil {
		return nil, true, fmt.Errorf("%s emulator: picking free ports: %w", sp.name, err)
	}
	return startOn(ctx, inst, sp, logDir, ports, useCDS)
}

// startOn starts the JVM on the given ports and waits for readiness.
func startOn(ctx context.Context, inst *installation, sp spec, logDir string, ports []int, useCDS bool) (_ *Emulator, retry bool, _ error) {
	logFile, err := createLog(logDir, sp.name)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close() // the child has its own copy

	flags := append([]string(nil), defaultJVMFlags...)
	flags = append(flags, strings.Fields(os.Getenv(JavaOptsEnv))...)
	var cds *cdsPlan
	if useCDS && inst.javaVersion >= 13 { // dynamic archives need Java 13+
		cds = planCDS(sp.name, inst.java, sp.jar, flags)
	}
	args := flags
	if cds != nil {
		args = append(args, cds.flags...)
	}
	if sp.main != "" {
		args = append(args, "-cp", sp.jar, sp.main)
	} else {
		args = append(args, "-jar", sp.jar)
	}
	args = append(args, sp.args(ports)...)
	if sp.dataDir != "" {
		if snap := latestSnapshot(sp.dataDir); snap != "" {
			args = append(args, "--import-data="+snap)
		}
	}

	cmd := exec.Command(inst.java, args...)
	cmd.Dir = logDir // anything the JVM writes in its working directory (hs_err_pid*.log) lands next to the log
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	e := &Emulator{
		Name:    sp.name,
		Host:    net.JoinHostPort(loopback, strconv.Itoa(ports[0])),
		LogPath: logFile.Name(),
		cmd:     cmd,
		cmdline: inst.java + " " + strings.Join(args, " "),
		done:    make(chan struct{}),
		cds:     cds,
		inst:    inst, sp: sp, ports: ports, logDir: logDir, dataDir: sp.dataDir,
	}
	fmt.Fprintf(logFile, "# %s\n", e.cmdline)
	if err := proc.Start(cmd); err != nil {
		cds.finish(false)
		return nil, false, fmt.Errorf("%s emulator: starting %s: %w", sp.name, inst.java, err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()

	rctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	err = waitHTTPOk(rctx, e.Host, e.done)
	if err == nil {
		err = waitOwned(rctx, e.PID(), ports, e.done)
	}
	if err == nil {
		return e, false, nil
	}
	select {
	case <-e.done:
		err = errExited // it died, whatever else happened meanwhile
	default:
	}
	if errors.Is(err, errExited) {
		<-e.done
		e.cds.finish(false)
		tail := e.logTail()
		retry = cds != nil || strings.Contains(tail, "BindException") || strings.Contains(tail, "Address already in use")
		return nil, retry, fmt.Errorf("%s emulator exited before becoming ready (%v)\ncommand: %s%s", sp.name, e.waitErr, e.cmdline, tail)
	}
	stopErr := e.Stop()
	if stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	return nil, false, fmt.Errorf("%s emulator did not become ready: %w\ncommand: %s%s", sp.name, err, e.cmdline, e.logTail())
}

// freePorts returns n distinct free TCP ports on the loopback interface. The
// listeners are held until all ports are picked so they differ.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// createLog creates logDir/NAME.log, or NAME-2.log, ... if it exists.
func createLog(logDir, name string) (*os.File, error) {
	for i := 1; ; i++ {
		p := filepath.Join(logDir, name+".log")
		if i > 1 {
			p = filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, i))
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) && i < 1000 {
			continue
		}
		return f, err
	}
}

// logTail returns the end of the emulator's log, formatted for an error
// message, without the per-connection noise the emulators print.
func (e *Emulator) logTail() string {
	if e.LogPath == "" {
		return ""
	}
	const maxBytes, maxLines = 16 << 10, 40
	f, err := os.Open(e.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		f.Seek(fi.Size()-maxBytes, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	var lines []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.Contains(line, "HttpVersionRoutingHandler channelRead") ||
			strings.Contains(line, "Detected non-HTTP/2 connection") ||
			strings.Contains(line, "[warning][cds") || strings.HasPrefix(line, "# ") ||
			strings.TrimSpace(line) == "" {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return fmt.Sprintf("\nlog %s (last %d lines):\n\t%s", e.LogPath, len(lines), strings.Join(lines, "\n\t"))
}
