package runemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// EnvVar is the environment variable that points Updraft at a running stand-in (host:port).
const EnvVar = "UPDRAFT_CLOUDRUN_EMULATOR_HOST"

// DefaultTimeout is a task's timeout when neither the job nor the run overrides it: Cloud
// Run's default of 10 minutes.
const DefaultTimeout = 10 * time.Minute

// DefaultKillGrace is how long a timed-out or cancelled execution's processes get between
// SIGTERM and SIGKILL, as Cloud Run gives a stopping container 10 seconds.
const DefaultKillGrace = 10 * time.Second

// Config is what the stand-in's jobs run.
type Config struct {
	// Jobs maps a job id (the J of projects/P/locations/L/jobs/J, in any P and L) to what an
	// execution of it runs.
	Jobs map[string]JobSpec
	// KillGrace is the time between SIGTERM and SIGKILL; 0 means DefaultKillGrace.
	KillGrace time.Duration
}

// JobSpec is what an execution of a job runs in place of a container image.
type JobSpec struct {
	// Command is the container's entrypoint (Command[0]) followed by its args (Command[1:]).
	// A run's override args replace Command[1:].
	Command []string
	// Env is the container's environment, added to the stand-in's own.
	Env map[string]string
	// Timeout is the task timeout; 0 means DefaultTimeout.
	Timeout time.Duration
	// Limits are the container's resource limits (cpu, memory) as GetJob reports them. The
	// stand-in records them; it does not enforce them.
	Limits map[string]string
}

// LoadConfig reads a JSON file of jobs (for `make dev`):
//
//	{"jobs": {"nightly-export": {"command": ["go", "run", "./cmd/export"],
//	                             "env": {"TARGET": "dev"}, "timeout": "10m"}}}
//
// timeout is a Go duration string. Unknown fields are an error, so a typo doesn't go unseen.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("runemu: %w", err)
	}
	var file struct {
		Jobs map[string]struct {
			Command []string          `json:"command"`
			Env     map[string]string `json:"env"`
			Timeout string            `json:"timeout"`
		} `json:"jobs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return Config{}, fmt.Errorf("runemu: %s: %w", path, err)
	}
	cfg := Config{Jobs: map[string]JobSpec{}}
	for id, j := range file.Jobs {
		if !validID(id) {
			return Config{}, fmt.Errorf("runemu: %s: job id %q: use lowercase letters, digits and hyphens, starting with a letter", path, id)
		}
		if len(j.Command) == 0 {
			return Config{}, fmt.Errorf("runemu: %s: job %s has no command", path, id)
		}
		spec := JobSpec{Command: j.Command, Env: j.Env}
		if j.Timeout != "" {
			d, err := time.ParseDuration(j.Timeout)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("runemu: %s: job %s: timeout %q is not a positive duration like \"10m\"", path, id, j.Timeout)
			}
			spec.Timeout = d
		}
		cfg.Jobs[id] = spec
	}
	return cfg, nil
}

// validID reports whether id is a Cloud Run job id: lowercase letters, digits and hyphens,
// starting with a letter, not ending with a hyphen, at most 63 characters.
func validID(id string) bool {
	if id == "" || len(id) > 63 || id[0] < 'a' || id[0] > 'z' || id[len(id)-1] == '-' {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
