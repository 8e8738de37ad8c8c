package web

import (
	"fmt"
	"testing"
)

func TestLayoutGraphLayersAndEdges(t *testing.T) {
	g := layoutGraph([]graphTask{
		{ID: "extract"},
		{ID: "transform", Needs: []string{"extract"}},
		{ID: "load", Needs: []string{"transform", "extract"}},
		{ID: "notify", Needs: []string{"load", "missing"}},
	})
	layers := map[string]int{}
	for _, n := range g.Nodes {
		layers[n.ID] = n.Layer
	}
	want := map[string]int{"extract": 0, "transform": 1, "load": 2, "notify": 3}
	for id, l := range want {
		if layers[id] != l {
			t.Errorf("%s in layer %d; want %d", id, layers[id], l)
		}
	}
	if len(g.Edges) != 4 {
		t.Fatalf("%d edges; want 4 (the unknown need dropped): %+v", len(g.Edges), g.Edges)
	}
	for _, e := range g.Edges {
		if e.From == "extract" && e.To == "load" {
			// Crosses layer 1: enters and leaves it, so 4 points.
			if len(e.Points) != 4 {
				t.Errorf("extract→load has points %v; want a detour through layer 1", e.Points)
			}
		}
		for i := 1; i < len(e.Points); i++ {
			if e.Points[i].X < e.Points[i-1].X {
				t.Errorf("edge %s→%s runs leftwards: %v", e.From, e.To, e.Points)
			}
		}
	}
	if g.Width < 4*nodeW || g.Height < nodeH {
		t.Errorf("size %dx%d too small", g.Width, g.Height)
	}
}

func TestLayoutGraphNoOverlapAndDeterministic(t *testing.T) {
	// 1 → 100 → 1, plus a few chains: the fan-out case that must stay readable.
	tasks := []graphTask{{ID: "start"}}
	var mids []string
	for i := range 100 {
		id := fmt.Sprintf("partition_%03d", i)
		tasks = append(tasks, graphTask{ID: id, Needs: []string{"start"}})
		mids = append(mids, id)
	}
	tasks = append(tasks, graphTask{ID: "join", Needs: mids})
	g := layoutGraph(tasks)
	seen := map[point]string{}
	for _, n := range g.Nodes {
		if other, dup := seen[point{n.X, n.Y}]; dup {
			t.Fatalf("%s and %s at the same place", n.ID, other)
		}
		seen[point{n.X, n.Y}] = n.ID
		if n.X < 0 || n.Y < 0 || n.X+nodeW > g.Width || n.Y+nodeH > g.Height {
			t.Errorf("%s at %d,%d outside %dx%d", n.ID, n.X, n.Y, g.Width, g.Height)
		}
	}
	// Boxes in a column never overlap: rows are at least a box apart.
	cols := map[int][]int{}
	for _, n := range g.Nodes {
		cols[n.X] = append(cols[n.X], n.Y)
	}
	for x, ys := range cols {
		for i := range ys {
			for j := i + 1; j < len(ys); j++ {
				if d := ys[i] - ys[j]; d > -nodeH && d < nodeH {
					t.Fatalf("column %d: boxes at %d and %d overlap", x, ys[i], ys[j])
				}
			}
		}
	}
	if crossings(g) != 0 {
		t.Errorf("%d crossings in a fan-out/fan-in", crossings(g))
	}
	again := layoutGraph(tasks)
	if fmt.Sprint(again) != fmt.Sprint(g) {
		t.Error("the same tasks gave a different layout")
	}
}

func TestLayoutGraphOrderingRemovesCrossings(t *testing.T) {
	// In file order, a1→b2 and a2→b1 cross; the barycentre sweep uncrosses them.
	g := layoutGraph([]graphTask{
		{ID: "a1"}, {ID: "a2"},
		{ID: "b1", Needs: []string{"a2"}}, {ID: "b2", Needs: []string{"a1"}},
		{ID: "c", Needs: []string{"b1", "b2"}},
	})
	if n := crossings(g); n != 0 {
		t.Errorf("%d crossings; want 0: %+v", n, g)
	}
}

func TestLayoutGraphEdgeCases(t *testing.T) {
	if g := layoutGraph(nil); len(g.Nodes) != 0 || g.Width <= 0 {
		t.Errorf("empty: %+v", g)
	}
	// A cycle (validation forbids it) still draws every task instead of looping.
	g := layoutGraph([]graphTask{{ID: "a", Needs: []string{"b"}}, {ID: "b", Needs: []string{"a"}}, {ID: "c"}})
	if len(g.Nodes) != 3 {
		t.Errorf("cycle: %d nodes", len(g.Nodes))
	}
	if got := shortLabel("a_task_id_that_is_much_too_long_for_a_box"); len([]rune(got)) != labelMax {
		t.Errorf("shortLabel: %q", got)
	}
	e := placedEdge{Points: []point{{0, 5}, {10, 15}}}
	if got := e.Path(); got != "M0,5 C5,5 5,15 10,15" {
		t.Errorf("path %q", got)
	}
}

func BenchmarkLayoutGraph500(b *testing.B) {
	var tasks []graphTask
	for i := range 500 {
		t := graphTask{ID: fmt.Sprintf("t%03d", i)}
		if i > 0 {
			t.Needs = append(t.Needs, fmt.Sprintf("t%03d", (i-1)/3))
		}
		if i > 10 {
			t.Needs = append(t.Needs, fmt.Sprintf("t%03d", i-7))
		}
		tasks = append(tasks, t)
	}
	for b.Loop() {
		layoutGraph(tasks)
	}
}
