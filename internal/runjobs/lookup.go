package runjobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/api/iterator"

	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/tasks"
)

var _ engine.Finder = (*Executor)(nil)

// maxLookup bounds the executions a lookup reads, newest first.
const maxLookup = 300

// Find looks for an execution of the worker job of a resource class started for the attempt
// (its UPDRAFT_ATTEMPT names it), among the executions created since `since` (less a
// minute of clock skew), newest first. It returns "" when there is none: a start whose
// answer was lost is found instead of started twice.
func (x *Executor) Find(ctx context.Context, resources string, ref scheduler.AttemptRef, since time.Time) (string, error) {
	job := x.Job(resources)
	it := x.execs.ListExecutions(ctx, &runpb.ListExecutionsRequest{Parent: job, PageSize: 100})
	oldest := since.Add(-time.Minute)
	for range maxLookup {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("runjobs: list executions of %s: %w", job, err)
		}
		if attemptOf(e) == ref.AttemptID {
			return e.GetName(), nil
		}
		if ct := e.GetCreateTime(); ct != nil && !since.IsZero() && ct.AsTime().Before(oldest) {
			return "", nil
		}
	}
	return "", nil
}

// CancelAttempt finds the attempt's execution and cancels it, returning its name ("" and nil
// when there is none).
func (x *Executor) CancelAttempt(ctx context.Context, resources string, ref scheduler.AttemptRef, since time.Time) (string, error) {
	name, err := x.Find(ctx, resources, ref, since)
	if err != nil || name == "" {
		return "", err
	}
	return name, x.Cancel(ctx, name)
}

// attemptOf is the attempt id an execution's UPDRAFT_ATTEMPT carries ("" when none).
func attemptOf(e *runpb.Execution) string {
	for _, c := range e.GetTemplate().GetContainers() {
		for _, v := range c.GetEnv() {
			if v.GetName() == tasks.EnvAttempt {
				if ref, err := tasks.DecodeAttempt(v.GetValue()); err == nil {
					return ref.AttemptID
				}
			}
		}
	}
	return ""
}
