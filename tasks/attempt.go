package tasks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/updraft-dev/updraft/scheduler"
)

// EnvAttempt is the variable that carries the attempt to a worker: base64 JSON of an
// AttemptRef, the same for a Cloud Run job execution and a local subprocess.
const EnvAttempt = "UPDRAFT_ATTEMPT"

// EnvWorkerServe makes a worker a warm worker of the local dispatcher's pool: instead of the
// one attempt in EnvAttempt it runs every attempt the pool sends it, with the same clients.
const EnvWorkerServe = "UPDRAFT_WORKER_SERVE"

// PooledRef is the executor reference of one attempt a warm worker runs: the worker's own
// reference and `#ATTEMPT_ID`, so the executor can tell that attempt apart.
func PooledRef(workerRef, attemptID string) string { return workerRef + "#" + attemptID }

// EncodeAttempt encodes an attempt reference for EnvAttempt.
func EncodeAttempt(ref scheduler.AttemptRef) string {
	b, _ := json.Marshal(ref)
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeAttempt decodes EnvAttempt's value.
func DecodeAttempt(s string) (scheduler.AttemptRef, error) {
	var ref scheduler.AttemptRef
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ref, fmt.Errorf("%s is not base64: %w", EnvAttempt, err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return ref, fmt.Errorf("%s is not JSON: %w", EnvAttempt, err)
	}
	return ref, ref.Validate()
}
