// Package leaky is a plug-in API gone wrong, for TestPluginAPICheckFindsLeaks: each exported
// name below mentions an internal type in a different place, and the clean ones do not.
package leaky

import (
	"context"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/scheduler"
)

// Func returns an internal type.
type Func func(ctx context.Context) engine.Result

// Ctx has an exported field of an internal type, and a method returning one.
type Ctx struct {
	Task   *dag.Task
	hidden *dag.DAG // unexported: not part of the API
	Fine   scheduler.AttemptRef
}

// Engine returns an internal type.
func (c *Ctx) Engine() *engine.Engine { return nil }

func (c *Ctx) secret() *dag.DAG { return c.hidden }

// Runs has an interface method taking an internal type.
type Runs interface {
	Trigger(ctx context.Context, req engine.TriggerRequest) error
}

// Check returns a slice of an internal type.
func Check(map[string]any) []dag.ArgProblem { return nil }

// Tasks is a variable holding a map of internal values.
var Tasks map[string]*dag.Task

// Alias is an alias of an internal type.
type Alias = dag.ArgProblem

// Clean mentions only public types.
func Clean(ref scheduler.AttemptRef) (scheduler.Run, error) { return scheduler.Run{}, nil }
