package runemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/emulators/internal/proc"
)

// ServiceSpec is what a stand-in Cloud Run service runs: a command (the container's
// entrypoint and args) and its environment, on top of the stand-in's own.
type ServiceSpec struct {
	Command []string
	Env     map[string]string
	// Revision is K_REVISION (default NAME-00001-emu).
	Revision string
}

// Service is a stand-in for one Cloud Run service with at most one instance: a process
// serving HTTP on a loopback port picked at start. The stand-in binds the port itself and
// hands the listening socket to each instance as fd 3 with LISTEN_FDS=1 (and sets PORT to
// its number), so the port accepts connections from the moment StartService returns and
// across instance restarts: requests made while no instance runs wait in the socket's queue.
//
// As Cloud Run starts a new instance when one crashes, an instance that exits while the
// service is not being stopped is replaced at once (Instances counts them); what is left of
// its process group is killed first, as a container's is. K_SERVICE is not set, so a local
// service may run with UPDRAFT_AUTH=off (auth refuses that where K_SERVICE is set); K_REVISION
// and PORT are. Instance output goes to LogDir/NAME.log.
type Service struct {
	// URL is http://127.0.0.1:PORT.
	URL  string
	Name string

	spec    ServiceSpec
	ln      *net.TCPListener
	lnFile  *os.File
	logPath string

	mu        sync.Mutex
	cmd       *exec.Cmd
	instances int
	stopping  bool
	exited    chan struct{} // closed when the current instance is reaped
	stopped   chan struct{} // closed when the supervisor loop ends
}

// StartService starts a service's first instance. name is a Cloud Run service id.
func (s *Server) StartService(name string, spec ServiceSpec) (*Service, error) {
	if !validID(name) {
		return nil, fmt.Errorf("runemu: service id %q: use lowercase letters, digits and hyphens, starting with a letter", name)
	}
	if len(spec.Command) == 0 {
		return nil, fmt.Errorf("runemu: service %s has no command", name)
	}
	if spec.Revision == "" {
		spec.Revision = name + "-00001-emu"
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("runemu: service %s: listen: %w", name, err)
	}
	f, err := ln.File() // a dup: the stand-in keeps ln open, so the port stays bound
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("runemu: service %s: %w", name, err)
	}
	logPath := filepath.Join(s.LogDir, "services", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		ln.Close()
		f.Close()
		return nil, fmt.Errorf("runemu: %w", err)
	}
	svc := &Service{URL: "http://" + ln.Addr().String(), Name: name, spec: spec, ln: ln, lnFile: f, logPath: logPath,
		stopped: make(chan struct{})}
	if err := svc.startInstance(); err != nil {
		ln.Close()
		f.Close()
		return nil, err
	}
	go svc.supervise()
	return svc, nil
}

// startInstance starts one instance; the caller holds no lock.
func (svc *Service) startInstance() error {
	logFile, err := os.OpenFile(svc.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("runemu: service %s: %w", svc.Name, err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(svc.spec.Command[0], svc.spec.Command[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{svc.lnFile}
	cmd.Env = os.Environ()
	for k, v := range svc.spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	_, port, _ := net.SplitHostPort(svc.ln.Addr().String())
	cmd.Env = append(cmd.Env, "PORT="+port, "LISTEN_FDS=1", "K_REVISION="+svc.spec.Revision)
	if err := proc.Start(cmd); err != nil {
		return fmt.Errorf("runemu: service %s: start an instance: %w", svc.Name, err)
	}
	svc.mu.Lock()
	svc.cmd = cmd
	svc.instances++
	svc.exited = make(chan struct{})
	svc.mu.Unlock()
	return nil
}

// supervise reaps each instance and replaces it until the service is stopped.
func (svc *Service) supervise() {
	defer close(svc.stopped)
	for {
		svc.mu.Lock()
		cmd, exited := svc.cmd, svc.exited
		svc.mu.Unlock()
		pid := cmd.Process.Pid
		waitExited(pid)
		// Exited, not reaped: the group id is still this instance's. A container's end
		// takes everything in it.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		close(exited)
		svc.mu.Lock()
		stopping := svc.stopping
		svc.mu.Unlock()
		if stopping {
			return
		}
		if err := svc.startInstance(); err != nil {
			fmt.Fprintf(os.Stderr, "runemu: service %s: no new instance: %v\n", svc.Name, err)
			return
		}
		svc.mu.Lock()
		if svc.stopping { // Stop came while the new instance started: it saw the old one
			_ = syscall.Kill(-svc.cmd.Process.Pid, syscall.SIGKILL)
		}
		svc.mu.Unlock()
	}
}

// PID is the current instance's process id.
func (svc *Service) PID() int {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.cmd.Process.Pid
}

// Instances counts the instances started so far.
func (svc *Service) Instances() int {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.instances
}

// Crash kills the current instance's main process alone with SIGKILL (a crash; whatever it
// started is left to die as it would), waits until it is reaped and returns; a new instance
// is then starting.
func (svc *Service) Crash() error {
	svc.mu.Lock()
	cmd, exited := svc.cmd, svc.exited
	svc.mu.Unlock()
	select {
	case <-exited:
		return errors.New("runemu: the instance already exited")
	default:
	}
	// Not reaped until supervise reaps it after exited is observed: the pid is ours.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("runemu: kill instance %d: %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("runemu: instance %d not reaped 30 s after SIGKILL", cmd.Process.Pid)
	}
	return nil
}

// Stop sends the instance's process group SIGTERM, as Cloud Run does when it stops an
// instance, then SIGKILL after grace (default DefaultKillGrace), waits until it is reaped and
// closes the port. It is safe to call more than once.
func (svc *Service) Stop(grace time.Duration) {
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	svc.mu.Lock()
	already := svc.stopping
	svc.stopping = true
	cmd, exited := svc.cmd, svc.exited
	svc.mu.Unlock()
	if !already {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(grace):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}
	}
	<-svc.stopped
	svc.ln.Close()
	svc.lnFile.Close()
}
