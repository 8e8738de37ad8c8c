package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

// RefPrefix starts the executor reference of every attempt the runner runs:
// runner:REVISION:HOST:PID#ATTEMPT_ID. No executor knows such a reference, so once the
// attempt's lease renewals stop (the instance died), the tick finds the attempt lost.
const RefPrefix = "runner:"

// maxRunnerBody bounds a request body: a push envelope of one encoded attempt is under 2 KB.
const maxRunnerBody = 64 << 10

// Runner is the warm runner's HTTP handler: each request is one Pub/Sub push of one task
// message (the tasks topic's JSON, scheduler.TaskMessage, whose attempt is the one a worker
// job gets in UPDRAFT_ATTEMPT), and the attempt runs inside the request with the worker code (Worker:
// claim, lease renewal, the task's own timeout, proctree supervision of shell trees, the
// result). The answer comes when the outcome is recorded:
//
//   - 204: the outcome is recorded, or there was nothing to run (the attempt is already
//     claimed, by an earlier delivery or another instance, or no longer current), or the
//     message can never be run (logged; a redelivery would not help).
//   - 429: Concurrency attempts already run here; Pub/Sub redelivers later.
//   - 500: the outcome could not be recorded; Pub/Sub redelivers, and the redelivery finds
//     the attempt claimed and answers 204.
//
// Attempts run on ctx (Runner's), not on the request's: a push connection that drops does
// not cancel a task, whose own timeout bounds it. Cancelling ctx (SIGTERM: Cloud Run stops
// the instance) stops the running tasks as it stops a job's, and their outcomes are recorded.
type Runner struct {
	ctx    context.Context
	worker *taskrun.Worker
	log    *slog.Logger
	slots  chan struct{}
	wg     sync.WaitGroup
}

// NewRunner makes the runner's handler over a worker. concurrency bounds the attempts run
// at once (at least 1; the Cloud Run service's containerConcurrency should be the same).
// w.ExecutorRef is the runner's own reference (RefPrefix…); each attempt runs as
// tasks.PooledRef of it.
func New(ctx context.Context, w *taskrun.Worker, concurrency int) *Runner {
	if concurrency < 1 {
		concurrency = 1
	}
	log := w.Log
	if log == nil {
		log = slog.Default()
	}
	return &Runner{ctx: ctx, worker: w, log: log, slots: make(chan struct{}, concurrency)}
}

// Wait waits for the attempts in flight to be recorded.
func (rn *Runner) Wait() { rn.wg.Wait() }

// ServeHTTP runs one pushed attempt.
func (rn *Runner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "runner: POST a Pub/Sub push envelope whose data is a task message", http.StatusMethodNotAllowed)
		return
	}
	ref, msgID, err := decodePushedAttempt(r.Body)
	if err != nil {
		// Acknowledged: no redelivery can fix it.
		rn.log.Error("runner: dropping a message that can never be run", "message_id", msgID, "error", err)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	select {
	case rn.slots <- struct{}{}:
	default:
		http.Error(w, fmt.Sprintf("runner: %d attempts already run here; retry later", cap(rn.slots)), http.StatusTooManyRequests)
		return
	}
	rn.wg.Add(1)
	defer func() { <-rn.slots; rn.wg.Done() }()
	err = rn.worker.ExecuteAs(rn.ctx, ref, tasks.PooledRef(rn.worker.ExecutorRef, ref.AttemptID))
	if err != nil {
		rn.log.Warn("runner: attempt not recorded; Pub/Sub will redeliver it", "attempt_id", ref.AttemptID, "error", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodePushedAttempt reads a push envelope whose message data is a task message. Every
// failure says what was wrong, for the log.
func decodePushedAttempt(body io.Reader) (scheduler.AttemptRef, string, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxRunnerBody+1))
	if err != nil {
		return scheduler.AttemptRef{}, "", fmt.Errorf("read the request body: %w", err)
	}
	if len(b) > maxRunnerBody {
		return scheduler.AttemptRef{}, "", fmt.Errorf("request body is over %d bytes; a pushed task message is under 2 KB", maxRunnerBody)
	}
	var env struct {
		Message struct {
			Data      []byte `json:"data"`
			MessageID string `json:"messageId"`
		} `json:"message"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return scheduler.AttemptRef{}, "", fmt.Errorf("body is not a Pub/Sub push envelope: %w", err)
	}
	id := env.Message.MessageID
	if len(env.Message.Data) == 0 {
		return scheduler.AttemptRef{}, id, errors.New("push envelope has no message data (want a task message)")
	}
	msg, err := scheduler.DecodeTaskMessage(env.Message.Data)
	if err != nil {
		return msg.AttemptRef, id, fmt.Errorf("message data: %w", err)
	}
	if msg.CancelJob != "" {
		return msg.AttemptRef, id, errors.New("message data: a cancel_job request is Dispatch's, not the runner's")
	}
	return msg.AttemptRef, id, nil
}
