package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/updraft-dev/updraft/scheduler"
)

// The log contract the log-based metrics read (infra/monitoring.tf; infra/README.md, "Log
// contract"): a line whose LogKeyEvent attribute names what happened, with the fields below.
// Each is logged once per occurrence, by whoever's conditional write decided it, so a lost
// race or a redelivered message logs nothing more. The services log JSON with Cloud
// Logging's keys, so these attributes land in jsonPayload.
const (
	// LogKeyEvent is the attribute naming the event (jsonPayload.event).
	LogKeyEvent = "event"

	// LogEventTaskFinished: an attempt's outcome moved its task instance (once per finished
	// attempt: success, failed, up_for_retry, skipped, up_for_reschedule), or the engine
	// failed a task that could not run (dead-lettered, dagrun_timeout). Fields: dag_id,
	// run_id, task_id, try_number, attempt_id, state, and duration_ms when an attempt ran.
	LogEventTaskFinished = "task_finished"
	// LogEventDagrunStarted: a run moved queued → running. Fields: dag_id, run_id, run_type,
	// and for a scheduled run schedule_delay_ms (its start minus its data interval's end).
	LogEventDagrunStarted = "dagrun_started"
	// LogEventLostWorker: the tick failed an attempt whose lease expired and whose execution
	// is gone. Fields: dag_id, run_id, task_id, try_number, attempt_id, executor_ref.
	LogEventLostWorker = "lost_worker"
	// LogEventDeadLettered: a message from a dead-letter subscription was handled (and
	// acknowledged). Fields: subscription, outcome, data, and the ids it names if it decodes.
	LogEventDeadLettered = "dead_lettered"
	// LogEventIntervalsSkipped: a tick reached a DAG with catchup: false late and created
	// only the latest interval's run, one line per DAG. Fields: dag_id, schedule, skipped
	// (the count), skipped_from and skipped_to (the logical dates of the first and last).
	LogEventIntervalsSkipped = "intervals_skipped"
)

// Attribute keys of the log contract: the label and value extractors of the log-based
// metrics read these (jsonPayload.<key>).
const (
	LogKeyDagID           = "dag_id"
	LogKeyRunID           = "run_id"
	LogKeyTaskID          = "task_id"
	LogKeyMapIndex        = "map_index"
	LogKeyTryNumber       = "try_number"
	LogKeyAttemptID       = "attempt_id"
	LogKeyState           = "state"
	LogKeyAttemptState    = "attempt_state"
	LogKeyDurationMS      = "duration_ms"
	LogKeyRunType         = "run_type"
	LogKeyScheduleDelayMS = "schedule_delay_ms"
	LogKeyExecutorRef     = "executor_ref"
	LogKeySubscription    = "subscription"
	LogKeyOutcome         = "outcome"
	LogKeyData            = "data"
	LogKeyReason          = "reason"
)

// logEvent writes one line of the log contract.
func (e *Engine) logEvent(ctx context.Context, level slog.Level, event, msg string, attrs ...slog.Attr) {
	e.log.LogAttrs(ctx, level, msg, append([]slog.Attr{slog.String(LogKeyEvent, event)}, attrs...)...)
}

// taskAttrs are the ids of a task instance, with a for_each instance counted under its
// task's id (so the metrics' task_id label stays one series per task) and its index apart.
func taskAttrs(ref scheduler.AttemptRef) []slog.Attr {
	task := slog.String(LogKeyTaskID, ref.TaskID)
	attrs := []slog.Attr{slog.String(LogKeyDagID, ref.DagID), slog.String(LogKeyRunID, ref.RunID), task}
	if parent, i, ok := scheduler.ParseMapChild(ref.TaskID); ok {
		attrs[2] = slog.String(LogKeyTaskID, parent)
		attrs = append(attrs, slog.Int(LogKeyMapIndex, i))
	}
	if ref.TryNumber > 0 {
		attrs = append(attrs, slog.Int(LogKeyTryNumber, ref.TryNumber))
	}
	if ref.AttemptID != "" {
		attrs = append(attrs, slog.String(LogKeyAttemptID, ref.AttemptID))
	}
	return attrs
}

// logTaskFinished logs LogEventTaskFinished. ran is how long the attempt ran (negative: it
// never ran, and duration_ms is left out so the duration metric counts only real runs).
func (e *Engine) logTaskFinished(ctx context.Context, ref scheduler.AttemptRef, state scheduler.TaskState,
	attempt scheduler.AttemptState, ran time.Duration, reason string) {
	attrs := append(taskAttrs(ref), slog.String(LogKeyState, string(state)))
	if attempt != "" {
		attrs = append(attrs, slog.String(LogKeyAttemptState, string(attempt)))
	}
	if ran >= 0 {
		attrs = append(attrs, slog.Int64(LogKeyDurationMS, ran.Milliseconds()))
	}
	if reason != "" {
		attrs = append(attrs, slog.String(LogKeyReason, truncate(reason, 500)))
	}
	level := slog.LevelInfo
	if state == scheduler.TaskFailed {
		level = slog.LevelWarn
	}
	e.logEvent(ctx, level, LogEventTaskFinished, "task finished", attrs...)
}

// span is how long an attempt ran, or -1 when it is not known.
func span(started time.Time, ended time.Time) time.Duration {
	if started.IsZero() || ended.Before(started) {
		return -1
	}
	return ended.Sub(started)
}
