package runemu

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

var parentName = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)$`)

// CreateJob adds a job from its template: the one container's command and args are what an
// execution runs, its env and the task timeout are kept, and its resource limits are checked
// (cpuMemory) and recorded. The operation is done at once, with the Job as metadata and
// response, as the real API's is once the job is ready.
func (js jobsService) CreateJob(ctx context.Context, req *runpb.CreateJobRequest) (*longrunningpb.Operation, error) {
	m := parentName.FindStringSubmatch(req.GetParent())
	if m == nil {
		return nil, status.Errorf(codes.InvalidArgument, "parent %q is not projects/PROJECT/locations/LOCATION", req.GetParent())
	}
	id := req.GetJobId()
	if !validID(id) {
		return nil, status.Errorf(codes.InvalidArgument, "job id %q: use lowercase letters, digits and hyphens, starting with a letter, at most 63", id)
	}
	tt := req.GetJob().GetTemplate().GetTemplate()
	if len(tt.GetContainers()) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "the stand-in's jobs have one container; got %d", len(tt.GetContainers()))
	}
	c := tt.GetContainers()[0]
	if len(c.GetCommand()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "the stand-in runs commands, not images: the container needs a command")
	}
	spec := JobSpec{Command: append(append([]string(nil), c.GetCommand()...), c.GetArgs()...), Env: map[string]string{}}
	for _, ev := range c.GetEnv() {
		if ev.GetValueSource() != nil {
			return nil, status.Errorf(codes.InvalidArgument, "env %s: the stand-in does not resolve secret references", ev.GetName())
		}
		spec.Env[ev.GetName()] = ev.GetValue()
	}
	if t := tt.GetTimeout(); t != nil {
		spec.Timeout = t.AsDuration()
	}
	if l := c.GetResources().GetLimits(); len(l) > 0 {
		if err := cpuMemory(l["cpu"], l["memory"]); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "job %s: %v", id, err)
		}
		spec.Limits = map[string]string{"cpu": l["cpu"], "memory": l["memory"]}
	}
	if !req.GetValidateOnly() {
		s := js.s
		s.mu.Lock()
		if _, ok := s.jobs[id]; ok {
			s.mu.Unlock()
			return nil, status.Errorf(codes.AlreadyExists, "Resource '%s' already exists.", id)
		}
		now := time.Now()
		s.jobs[id] = &job{spec: spec, uid: newUID(), created: now, updated: now, generation: 1}
		s.created = append(s.created, id)
		s.mu.Unlock()
	}
	name := req.GetParent() + "/jobs/" + id
	j, err := js.GetJob(ctx, &runpb.GetJobRequest{Name: name})
	if err != nil { // validate only: nothing was stored
		j = &runpb.Job{Name: name, Template: req.GetJob().GetTemplate()}
	}
	a, err := anypb.New(j)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &longrunningpb.Operation{Name: newOperationName(m[1], m[2]), Done: true, Metadata: a,
		Result: &longrunningpb.Operation_Response{Response: a}}, nil
}

// Created lists the job ids CreateJob has made, in order.
func (s *Server) Created() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.created...)
}

// cpuMemory checks a container's limits against Cloud Run jobs' allowed combinations
// (https://cloud.google.com/run/docs/configuring/jobs/cpu, "vCPU and memory"): whole vCPUs
// 1, 2, 4, 6 or 8; memory 512Mi-4Gi, 512Mi-8Gi, 2-16Gi, 4-24Gi and 4-32Gi respectively.
func cpuMemory(cpu, memory string) error {
	limits := map[string][2]int{"1": {512, 4 << 10}, "2": {512, 8 << 10}, "4": {2 << 10, 16 << 10}, "6": {4 << 10, 24 << 10}, "8": {4 << 10, 32 << 10}}
	lim, ok := limits[cpu]
	if !ok {
		return fmt.Errorf("cpu limit %q is not 1, 2, 4, 6 or 8", cpu)
	}
	mm := regexp.MustCompile(`^(\d+)(Gi|Mi)$`).FindStringSubmatch(memory)
	if mm == nil {
		return fmt.Errorf("memory limit %q is not like 512Mi or 4Gi", memory)
	}
	mib, _ := strconv.Atoi(mm[1])
	if mm[2] == "Gi" {
		mib *= 1024
	}
	if mib < lim[0] || mib > lim[1] {
		return fmt.Errorf("memory %s is outside %dMi-%dMi for cpu %s", memory, lim[0], lim[1], cpu)
	}
	return nil
}
