package runemu

// ExecutionCount is how many executions of a job (by id, in any project and location) RunJob
// started, for tests that prove a job ran once.
func (s *Server) ExecutionCount(jobID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.execs {
		if e.jobID == jobID {
			n++
		}
	}
	return n
}

// ExecutionStates lists a job's executions by short id: "running", "succeeded", "failed",
// "cancelled" or "timed_out".
func (s *Server) ExecutionStates(jobID string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, e := range s.execs {
		if e.jobID != jobID {
			continue
		}
		st := "running"
		switch {
		case !e.finished:
		case e.cancelled:
			st = "cancelled"
		case e.timedOut:
			st = "timed_out"
		case e.succeeded():
			st = "succeeded"
		default:
			st = "failed"
		}
		out[e.id] = st
	}
	return out
}
