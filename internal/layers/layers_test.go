package layers

import (
	"fmt"
	"sort"
	"strings"
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

// TestRules checks Updraft's table over the module. One bad import often breaks a rule for
// many packages at once, so the imports that cross into forbidden packages are listed first.
func TestRules(t *testing.T) {
	t.Parallel()
	findings := Rules.Check(moduleGraph(t))
	crossings := map[string]int{}
	for _, f := range findings {
		if len(f.Chain) >= 2 {
			crossings[fmt.Sprintf("rule %s: %s -> %s", f.Rule, f.Chain[len(f.Chain)-2], f.Forbidden())]++
		}
	}
	if len(crossings) > 0 {
		var lines []string
		for c, n := range crossings {
			lines = append(lines, fmt.Sprintf("%s (packages affected: %d)", c, n))
		}
		sort.Strings(lines)
		t.Errorf("the imports that break the rules:\n%s\nevery violation:", strings.Join(lines, "\n"))
	}
	for _, f := range findings {
		t.Error(f)
	}
}
