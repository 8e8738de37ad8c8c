package layers

import (
	"sync"
	"testing"
)

var module struct {
	once  sync.Once
	graph Graph
	err   error
}

// moduleGraph loads the module's package graph once per test binary.
func moduleGraph(t *testing.T) Graph {
	t.Helper()
	module.once.Do(func() { module.graph, module.err = Load("../..", "./...") })
	if module.err != nil {
		t.Fatal(module.err)
	}
	return module.graph
}

func TestRules(t *testing.T) {
	t.Parallel()
	g := moduleGraph(t)
	for _, f := range Rules.Check(g) {
		t.Error(f)
	}
}
