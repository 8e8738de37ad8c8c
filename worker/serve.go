package worker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/tasks"
)

// serveAttempts reads commands from in, one a line: `run ATTEMPT` (tasks.EncodeAttempt)
// starts an attempt, `cancel ATTEMPT_ID` stops one as SIGTERM stops a one-attempt worker
// (the task's tree is stopped and the outcome recorded). Each attempt's end is written to
// done as `done ATTEMPT_ID`. Each attempt's executor reference is this process's with
// `#ATTEMPT_ID` (tasks.PooledRef): its shell runs under a proctree supervisor tagged with
// this process, so when it dies all its attempts' trees die, and the tick finds each of its
// attempts lost. When in ends, the attempts running finish and serveAttempts returns;
// when ctx ends (SIGTERM), they are stopped and recorded first.
//
// afterEach (nil: nothing) runs after each attempt, before its end is reported.
func serveAttempts(ctx context.Context, w *taskrun.Worker, in io.Reader, done io.Writer, afterEach func()) error {
	base := w.ExecutorRef
	var (
		mu      sync.Mutex
		cancels = map[string]context.CancelFunc{}
		wg      sync.WaitGroup
		out     sync.Mutex
	)
	report := func(id string, err error) {
		out.Lock()
		defer out.Unlock()
		if err != nil {
			w.Log.Error("attempt not recorded", "attempt_id", id, "error", err)
		}
		if afterEach != nil {
			afterEach()
		}
		fmt.Fprintf(done, "done %s\n", id)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "run":
			ref, err := tasks.DecodeAttempt(arg)
			if err != nil {
				w.Log.Error("bad run command", "error", err)
				continue
			}
			actx, cancel := context.WithCancel(ctx)
			mu.Lock()
			cancels[ref.AttemptID] = cancel
			mu.Unlock()
			executorRef := tasks.PooledRef(base, ref.AttemptID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := w.ExecuteAs(actx, ref, executorRef)
				mu.Lock()
				delete(cancels, ref.AttemptID)
				mu.Unlock()
				cancel()
				report(ref.AttemptID, err)
			}()
		case "cancel":
			mu.Lock()
			if c, ok := cancels[arg]; ok {
				c()
			}
			mu.Unlock()
		default:
			w.Log.Error("unknown command", "command", verb)
		}
	}
	wg.Wait()
	return sc.Err()
}

// doneFile is where a warm worker reports to its pool: its attempts' ends, and a `kick` line
// each time it published a task message. It is fd 3, which local.Pool passes, opened once (a
// second *os.File of fd 3 would close it when collected).
var doneFile = sync.OnceValue(func() io.Writer { return os.NewFile(3, "updraft-pool-done") })

// kickingPublisher is a warm worker's publisher: after each task message it publishes (a
// downstream task its fast-follow queued, a retry), it writes `kick` to its pool, so the local
// dispatcher pulls at once instead of waiting for the Pub/Sub emulator's streaming pull, which
// looks for new messages only every 50 ms. Each line is a single write to a pipe, atomic with
// the `done` lines.
type kickingPublisher struct {
	publisher
	kick io.Writer
}

// publisher is what the engine publishes through (engine.Publisher).
type publisher interface {
	PublishTask(ctx context.Context, data []byte) error
	PublishEvent(ctx context.Context, data []byte) error
}

func (p kickingPublisher) PublishTask(ctx context.Context, data []byte) error {
	err := p.publisher.PublishTask(ctx, data)
	if err == nil {
		_, _ = io.WriteString(p.kick, "kick\n")
	}
	return err
}
