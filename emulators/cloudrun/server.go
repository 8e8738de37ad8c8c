package runemu

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server is a running stand-in.
type Server struct {
	// Addr is host:port to give the clients (option.WithEndpoint) and EnvVar.
	Addr string
	// LogDir holds the executions' logs, LogDir/<job>/<execution>.log.
	LogDir string

	grace    time.Duration
	grpc     *grpc.Server
	serveErr chan error
	stopOnce sync.Once

	mu      sync.Mutex
	closed  bool
	jobs    map[string]*job
	created []string              // the job ids CreateJob made, in order (create.go)
	execs   map[string]*execution // by full name
	ops     map[string]*operation // by full name
	running sync.WaitGroup        // one per execution whose process is not reaped yet
	logSink LogSink               // where container output goes besides the files (logs.go)
}

// job is a configured job.
type job struct {
	spec       JobSpec
	uid        string
	created    time.Time
	updated    time.Time
	generation int64
	count      int32
	latest     *execution
}

// operation is a long-running operation: RunJob's or CancelExecution's. Both are done when
// their execution has finished.
type operation struct {
	name   string
	exec   *execution
	cancel bool
}

var (
	_ runpb.JobsServer               = jobsService{}
	_ runpb.ExecutionsServer         = executionsService{}
	_ longrunningpb.OperationsServer = operationsService{}
)

// Start serves the stand-in on a free port of 127.0.0.1. Executions log under logDir ("" makes
// a new temporary directory, which is not removed).
func Start(cfg Config, logDir string) (*Server, error) {
	for id, spec := range cfg.Jobs {
		if !validID(id) {
			return nil, fmt.Errorf("runemu: job id %q: use lowercase letters, digits and hyphens, starting with a letter", id)
		}
		if len(spec.Command) == 0 {
			return nil, fmt.Errorf("runemu: job %s has no command", id)
		}
	}
	if logDir == "" {
		d, err := os.MkdirTemp("", "updraft-cloudrun-*")
		if err != nil {
			return nil, fmt.Errorf("runemu: %w", err)
		}
		logDir = d
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("runemu: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("runemu: listen: %w", err)
	}
	s := &Server{
		Addr: lis.Addr().String(), LogDir: logDir, grace: cfg.KillGrace,
		grpc: grpc.NewServer(), serveErr: make(chan error, 1),
		jobs: map[string]*job{}, execs: map[string]*execution{}, ops: map[string]*operation{},
	}
	if s.grace <= 0 {
		s.grace = DefaultKillGrace
	}
	for id, spec := range cfg.Jobs {
		s.SetJob(id, spec)
	}
	runpb.RegisterJobsServer(s.grpc, jobsService{s: s}) // CreateJob: create.go
	runpb.RegisterExecutionsServer(s.grpc, executionsService{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, operationsService{s: s})
	go func() { s.serveErr <- s.grpc.Serve(lis) }()
	return s, nil
}

// SetJob adds or replaces a job. Executions already running keep what they started with.
func (s *Server) SetJob(id string, spec JobSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if j, ok := s.jobs[id]; ok {
		j.spec, j.updated = spec, now
		j.generation++
		return
	}
	s.jobs[id] = &job{spec: spec, uid: newUID(), created: now, updated: now, generation: 1}
}

// Stop kills every running execution (it ends cancelled), waits until their processes are
// reaped and stops serving. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, e := range s.execs {
			if !e.exited {
				e.cancelled = true
				e.signal(sigKill)
			}
		}
		s.mu.Unlock()
		s.running.Wait()
		s.grpc.Stop()
		<-s.serveErr
	})
}

var (
	jobName       = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)$`)
	executionName = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)/executions/([^/]+)$`)
)

// notFound is Cloud Run's NOT_FOUND for a resource.
func notFound(kind, id, location, project string) error {
	return status.Errorf(codes.NotFound, "Resource '%s' of kind '%s' in region '%s' in project '%s' does not exist.", id, kind, location, project)
}

// jobsService is the google.cloud.run.v2.Jobs service.
type jobsService struct {
	runpb.UnimplementedJobsServer
	s *Server
}

// GetJob returns a configured job, with its command as the container's command and args.
func (js jobsService) GetJob(_ context.Context, req *runpb.GetJobRequest) (*runpb.Job, error) {
	m := jobName.FindStringSubmatch(req.GetName())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not projects/PROJECT/locations/LOCATION/jobs/JOB", req.GetName())
	}
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[m[3]]
	if !ok {
		return nil, notFound("JOB", m[3], m[2], m[1])
	}
	timeout := j.spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	out := &runpb.Job{
		Name: req.GetName(), Uid: j.uid, Generation: j.generation, ObservedGeneration: j.generation,
		CreateTime: timestamppb.New(j.created), UpdateTime: timestamppb.New(j.updated),
		Template: &runpb.ExecutionTemplate{TaskCount: 1, Parallelism: 1,
			Template: taskTemplate(m[3], j.spec.Command, j.spec.Env, timeout)},
		TerminalCondition: &runpb.Condition{Type: "Ready", State: runpb.Condition_CONDITION_SUCCEEDED,
			LastTransitionTime: timestamppb.New(j.updated)},
		ExecutionCount: j.count,
	}
	if len(j.spec.Limits) > 0 {
		out.Template.Template.Containers[0].Resources = &runpb.ResourceRequirements{Limits: j.spec.Limits}
	}
	if e := j.latest; e != nil {
		ref := &runpb.ExecutionReference{Name: e.name, CreateTime: timestamppb.New(e.created),
			CompletionStatus: runpb.ExecutionReference_EXECUTION_RUNNING}
		if e.finished {
			ref.CompletionTime = timestamppb.New(e.completed)
			switch {
			case e.cancelled:
				ref.CompletionStatus = runpb.ExecutionReference_EXECUTION_CANCELLED
			case e.succeeded():
				ref.CompletionStatus = runpb.ExecutionReference_EXECUTION_SUCCEEDED
			default:
				ref.CompletionStatus = runpb.ExecutionReference_EXECUTION_FAILED
			}
		}
		out.LatestCreatedExecution = ref
	}
	return out, nil
}

// RunJob starts an execution of a job; see the package comment for what runs.
func (js jobsService) RunJob(_ context.Context, req *runpb.RunJobRequest) (*longrunningpb.Operation, error) {
	m := jobName.FindStringSubmatch(req.GetName())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not projects/PROJECT/locations/LOCATION/jobs/JOB", req.GetName())
	}
	project, location, jobID := m[1], m[2], m[3]
	s := js.s
	s.mu.Lock()
	j, ok := s.jobs[jobID]
	var spec JobSpec
	if ok {
		spec = j.spec
	}
	s.mu.Unlock()
	if !ok {
		return nil, notFound("JOB", jobID, location, project)
	}
	if len(spec.Command) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s has no command in the stand-in's configuration", jobID)
	}
	argv := append([]string(nil), spec.Command...)
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if o := req.GetOverrides(); o != nil {
		if len(o.GetContainerOverrides()) > 1 {
			return nil, status.Errorf(codes.InvalidArgument, "the stand-in's jobs have one container; got %d container overrides", len(o.GetContainerOverrides()))
		}
		for _, c := range o.GetContainerOverrides() {
			switch {
			case len(c.GetArgs()) > 0:
				argv = append(argv[:1], c.GetArgs()...)
			case c.GetClearArgs():
				argv = argv[:1]
			}
			for _, ev := range c.GetEnv() {
				if ev.GetName() == "" {
					return nil, status.Error(codes.InvalidArgument, "an env override has no name")
				}
				if ev.GetValueSource() != nil {
					return nil, status.Errorf(codes.InvalidArgument, "env %s: the stand-in does not resolve secret references", ev.GetName())
				}
				env[ev.GetName()] = ev.GetValue()
			}
		}
		if t := o.GetTimeout(); t != nil {
			if err := t.CheckValid(); err != nil || t.AsDuration() <= 0 {
				return nil, status.Errorf(codes.InvalidArgument, "timeout %v is not a positive duration", t.AsDuration())
			}
			timeout = t.AsDuration()
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, status.Error(codes.Unavailable, "the stand-in is stopping")
	}
	id := jobID + "-" + randomSuffix()
	e := &execution{
		s: s, name: fmt.Sprintf("projects/%s/locations/%s/jobs/%s/executions/%s", project, location, jobID, id),
		id: id, jobID: jobID, project: project, location: location, uid: newUID(),
		argv: argv, env: env, timeout: timeout, created: time.Now(), done: make(chan struct{}),
	}
	if req.GetValidateOnly() {
		e.finished, e.exited = true, true
		e.completed = e.created
		close(e.done)
		return s.operationProto(&operation{name: newOperationName(project, location), exec: e})
	}
	j.count++
	j.latest = e
	s.execs[e.name] = e
	e.start()
	op := &operation{name: newOperationName(project, location), exec: e}
	s.ops[op.name] = op
	return s.operationProto(op)
}

// executionsService is the google.cloud.run.v2.Executions service.
type executionsService struct {
	runpb.UnimplementedExecutionsServer
	s *Server
}

// lookup finds an execution by its full name; the caller holds s.mu.
func (s *Server) lookup(name string) (*execution, error) {
	m := executionName.FindStringSubmatch(name)
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "name %q is not projects/PROJECT/locations/LOCATION/jobs/JOB/executions/EXECUTION", name)
	}
	e, ok := s.execs[name]
	if !ok {
		return nil, notFound("EXECUTION", m[4], m[2], m[1])
	}
	return e, nil
}

// GetExecution returns an execution's current state.
func (es executionsService) GetExecution(_ context.Context, req *runpb.GetExecutionRequest) (*runpb.Execution, error) {
	s := es.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(req.GetName())
	if err != nil {
		return nil, err
	}
	return e.proto(), nil
}

// ListExecutions lists a job's executions, newest first, in one page.
func (es executionsService) ListExecutions(_ context.Context, req *runpb.ListExecutionsRequest) (*runpb.ListExecutionsResponse, error) {
	m := jobName.FindStringSubmatch(req.GetParent())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "parent %q is not projects/PROJECT/locations/LOCATION/jobs/JOB", req.GetParent())
	}
	s := es.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[m[3]]; !ok {
		return nil, notFound("JOB", m[3], m[2], m[1])
	}
	var list []*execution
	for _, e := range s.execs {
		if e.project == m[1] && e.location == m[2] && e.jobID == m[3] {
			list = append(list, e)
		}
	}
	sort.Slice(list, func(a, b int) bool { return list[a].created.After(list[b].created) })
	out := &runpb.ListExecutionsResponse{}
	for _, e := range list {
		out.Executions = append(out.Executions, e.proto())
	}
	return out, nil
}

// CancelExecution stops a running execution: SIGTERM to its process group, SIGKILL after the
// grace period. The operation is done when the process is reaped; the execution then counts
// one cancelled task. Cancelling a finished execution is FAILED_PRECONDITION.
func (es executionsService) CancelExecution(_ context.Context, req *runpb.CancelExecutionRequest) (*longrunningpb.Operation, error) {
	s := es.s
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(req.GetName())
	if err != nil {
		return nil, err
	}
	if e.finished {
		return nil, status.Errorf(codes.FailedPrecondition, "execution %s has already finished", e.id)
	}
	if !req.GetValidateOnly() && !e.cancelled && !e.timedOut {
		e.cancelled = true
		e.terminate()
	}
	op := &operation{name: newOperationName(e.project, e.location), exec: e, cancel: true}
	s.ops[op.name] = op
	return s.operationProto(op)
}

// operationsService is the google.longrunning.Operations service.
type operationsService struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

// GetOperation returns an operation's current state.
func (ops operationsService) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	s := ops.s
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %q not found", req.GetName())
	}
	return s.operationProto(op)
}

// WaitOperation returns an operation once it is done, or its state after the request's
// timeout (default one minute).
func (ops operationsService) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	s := ops.s
	s.mu.Lock()
	op, ok := s.ops[req.GetName()]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %q not found", req.GetName())
	}
	wait := time.Minute
	if t := req.GetTimeout(); t != nil && t.AsDuration() > 0 {
		wait = t.AsDuration()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-op.exec.done:
	case <-timer.C:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.operationProto(op)
}

// CancelOperation is not how a Cloud Run execution is cancelled.
func (operationsService) CancelOperation(context.Context, *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "cancel the execution (CancelExecution), not its operation")
}

// taskTemplate is an execution's task template: one container running argv.
func taskTemplate(jobID string, argv []string, env map[string]string, timeout time.Duration) *runpb.TaskTemplate {
	c := &runpb.Container{Name: jobID, Image: "local/" + jobID}
	if len(argv) > 0 {
		c.Command, c.Args = argv[:1], argv[1:]
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Env = append(c.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: env[k]}})
	}
	return &runpb.TaskTemplate{Containers: []*runpb.Container{c}, Timeout: durationpb.New(timeout),
		Retries: &runpb.TaskTemplate_MaxRetries{MaxRetries: 0}}
}

func newOperationName(project, location string) string {
	return fmt.Sprintf("projects/%s/locations/%s/operations/%s", project, location, newUID())
}

// newUID is a random UUID (version 4).
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomSuffix is the five lowercase letters and digits Cloud Run appends to a job's name to
// name an execution.
func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [5]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
