package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// DeployOutcome says what deploying one DAG did.
type DeployOutcome string

// Deploy outcomes.
const (
	Created   DeployOutcome = "created"
	Updated   DeployOutcome = "updated"
	Unchanged DeployOutcome = "unchanged"
)

// Deploy stores a DAG: a new immutable version, and the DAG record pointing at it. Deploying
// the same file again changes nothing; a changed file replaces the DAG for new runs while
// running runs keep the version they started with.
func (e *Engine) Deploy(ctx context.Context, d *dag.DAG, source []byte) (DeployOutcome, error) {
	spec, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("engine: encode DAG %s: %w", d.ID, err)
	}
	now := e.now()
	if err := e.store.PutVersion(ctx, &scheduler.DAGVersion{
		DagID: d.ID, Version: d.Source.Hash, File: d.Source.File, Source: string(source), SpecJSON: string(spec), CreatedAt: now,
		Bundle: bundleOf(d),
	}); err != nil {
		return "", err
	}
	for range maxConflictRetries {
		cur, err := e.store.GetDAG(ctx, d.ID)
		if errors.Is(err, fsstore.ErrNotFound) {
			rec := scheduler.DAGRecord{
				DagID: d.ID, Version: d.Source.Hash, File: d.Source.File, Owner: d.Owner, Schedule: d.Schedule,
				Timezone: d.Timezone, Paused: d.Paused, Active: true, UpdatedAt: now,
			}
			if err := setCursor(&rec, d, now, nil); err != nil {
				return "", err
			}
			err := e.store.CreateDAG(ctx, &rec)
			if errors.Is(err, fsstore.ErrExists) {
				continue
			}
			if err != nil {
				return "", err
			}
			return Created, nil
		}
		if err != nil {
			return "", err
		}
		if cur.Rec.Version == d.Source.Hash && cur.Rec.Active {
			return Unchanged, nil
		}
		rec := cur.Rec
		rec.Version, rec.File, rec.Owner, rec.Active, rec.UpdatedAt = d.Source.Hash, d.Source.File, d.Owner, true, now
		if rec.Schedule != d.Schedule || rec.Timezone != d.Timezone || !sameCursorStart(cur.Rec, d) || rec.NextEnd == nil {
			rec.Schedule, rec.Timezone = d.Schedule, d.Timezone
			if err := setCursor(&rec, d, now, cur.Rec.NextStart); err != nil {
				return "", err
			}
		} else {
			rec.NextDueAt = dueAt(&rec)
		}
		_, err = e.store.UpdateDAGIf(ctx, d.ID, cur.UpdateTime, fsstore.DAGRecordFields(&rec))
		if isConflict(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		return Updated, nil
	}
	return "", fmt.Errorf("engine: deploy %s: too many concurrent changes", d.ID)
}

// bundleOf is what a version records of its bundle: the hash, or "dir:PATH" for a folder
// used in place.
func bundleOf(d *dag.DAG) string {
	switch {
	case d.Bundle == nil:
		return ""
	case d.Bundle.Hash != "":
		return d.Bundle.Hash
	}
	return "dir:" + d.Bundle.Dir
}

// sameCursorStart reports whether the DAG's start still agrees with its cursor (a start moved
// later than the cursor means the cursor must move).
func sameCursorStart(rec scheduler.DAGRecord, d *dag.DAG) bool {
	return d.Start == nil || rec.NextStart == nil || !d.Start.After(*rec.NextStart)
}

// setCursor points a DAG's cursor at its first interval at or after max(start, from).
func setCursor(rec *scheduler.DAGRecord, d *dag.DAG, now time.Time, from *time.Time) error {
	rec.NextStart, rec.NextEnd, rec.NextDueAt = nil, nil, nil
	if d.Schedule == "" {
		return nil
	}
	tt, err := Timetable(d, now)
	if err != nil {
		return fmt.Errorf("engine: DAG %s: %w", d.ID, err)
	}
	if from != nil && from.After(tt.Start) {
		tt.Start = *from
	}
	if iv, ok := tt.First(); ok {
		rec.NextStart, rec.NextEnd = ptr(iv.Start.UTC()), ptr(iv.End.UTC())
	}
	rec.NextDueAt = dueAt(rec)
	return nil
}

// dueAt is when the tick must next look at a DAG: its cursor's end, unless it is paused,
// inactive or has no next interval.
func dueAt(rec *scheduler.DAGRecord) *time.Time {
	if rec.Paused || !rec.Active || rec.NextEnd == nil {
		return nil
	}
	return ptr(*rec.NextEnd)
}

func cursorOf(rec *scheduler.DAGRecord) (schedule.Interval, bool) {
	if rec.NextStart == nil || rec.NextEnd == nil {
		return schedule.Interval{}, false
	}
	return schedule.Interval{Start: *rec.NextStart, End: *rec.NextEnd}, true
}

// Prune deactivates the active DAGs not in keep (their files are gone): they create no more
// runs; their history stays. It returns the ids it deactivated.
func (e *Engine) Prune(ctx context.Context, keep map[string]bool) ([]string, error) {
	all, err := e.store.ListDAGs(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range all {
		if keep[v.Rec.DagID] || !v.Rec.Active {
			continue
		}
		if err := e.deactivate(ctx, v.Rec.DagID, v.UpdateTime); err != nil {
			return out, err
		}
		out = append(out, v.Rec.DagID)
	}
	return out, nil
}

// deactivate marks a DAG inactive, re-reading it when something else wrote it meanwhile (a
// tick moving its cursor, a run noted for the UI).
func (e *Engine) deactivate(ctx context.Context, dagID string, ut time.Time) error {
	for range maxConflictRetries {
		_, err := e.store.DeactivateDAGIf(ctx, dagID, ut, e.now())
		if !isConflict(err) {
			return err
		}
		v, err := e.store.GetDAG(ctx, dagID)
		if err != nil {
			return err
		}
		if !v.Rec.Active {
			return nil
		}
		ut = v.UpdateTime
	}
	return fmt.Errorf("engine: deactivate %s: too many concurrent changes", dagID)
}

// Trigger starts a manual run of a deployed DAG with conf (checked against the DAG's params)
// at logical date T; a scheduled DAG's run covers the latest complete interval ending at or
// before T, as Airflow infers it. It starts the run itself; clients use SubmitTrigger.
func (e *Engine) Trigger(ctx context.Context, dagID string, conf map[string]any, T time.Time) (*scheduler.Run, error) {
	nr, err := e.manualRun(ctx, dagID, conf, T)
	if err != nil {
		return nil, err
	}
	return e.CreateRun(ctx, nr)
}

// manualRun checks a manual trigger and describes its run.
func (e *Engine) manualRun(ctx context.Context, dagID string, conf map[string]any, T time.Time) (NewRun, error) {
	v, err := e.store.GetDAG(ctx, dagID)
	if errors.Is(err, fsstore.ErrNotFound) {
		return NewRun{}, fmt.Errorf("no DAG %q is deployed (see `updraft dags list`)", dagID)
	}
	if err != nil {
		return NewRun{}, err
	}
	if !v.Rec.Active {
		return NewRun{}, fmt.Errorf("DAG %q was removed (its file is gone); deploy it again to run it", dagID)
	}
	spec, err := e.Spec(ctx, dagID, v.Rec.Version)
	if err != nil {
		return NewRun{}, err
	}
	if err := CheckConf(spec, conf); err != nil {
		return NewRun{}, err
	}
	tt, err := Timetable(spec, T)
	if err != nil {
		return NewRun{}, err
	}
	return NewRun{
		DagID: dagID, Version: v.Rec.Version, Type: scheduler.RunManual, Logical: T, Interval: tt.Infer(T), Conf: conf,
	}, nil
}

// CheckConf checks a trigger's conf against the DAG's params (dag.DAG.CheckConf): names,
// kinds, and a typed param's type, enum and pattern.
func CheckConf(d *dag.DAG, conf map[string]any) error { return d.CheckConf(conf) }

// SetPaused pauses or unpauses a DAG. A paused DAG creates no runs; on unpause its cursor is
// kept, so without catchup only the latest complete interval runs.
func (e *Engine) SetPaused(ctx context.Context, dagID string, paused bool) error {
	for range maxConflictRetries {
		v, err := e.store.GetDAG(ctx, dagID)
		if errors.Is(err, fsstore.ErrNotFound) {
			return fmt.Errorf("no DAG %q is deployed (see `updraft dags list`)", dagID)
		}
		if err != nil {
			return err
		}
		rec := v.Rec
		rec.Paused = paused
		_, err = e.store.SetPausedIf(ctx, dagID, v.UpdateTime, paused, dueAt(&rec), e.now())
		if !isConflict(err) {
			return err
		}
	}
	return fmt.Errorf("engine: pause %s: too many concurrent changes", dagID)
}
