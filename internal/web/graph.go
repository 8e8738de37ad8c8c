package web

import (
	"fmt"
	"sort"
	"strings"
)

// Graph geometry, in SVG user units (pixels at 100%).
const (
	nodeW    = 184
	nodeH    = 30
	colGap   = 64
	rowGap   = 12
	graphPad = 12
	// labelMax is how many characters of a task id fit in a node; longer ids are cut with
	// an ellipsis and shown whole in the node's title.
	labelMax = 22
)

// graphTask is what the layout needs of a task: its id and the ids it needs.
type graphTask struct {
	ID    string
	Needs []string
}

// point is a position in the graph's SVG.
type point struct{ X, Y int }

// placedNode is a task placed in the graph: its box's top-left corner and its layer
// (column; 0 holds the tasks that need nothing).
type placedNode struct {
	ID    string
	X, Y  int
	Layer int
}

// placedEdge is a dependency drawn from its upstream's right side to its downstream's
// left side, through the points where it crosses the layers in between.
type placedEdge struct {
	From, To string
	Points   []point
}

// Path is the edge as an SVG path: straight into and out of each layer it crosses, curved
// between them.
func (e placedEdge) Path() string {
	var b strings.Builder
	for i, p := range e.Points {
		if i == 0 {
			fmt.Fprintf(&b, "M%d,%d", p.X, p.Y)
			continue
		}
		q := e.Points[i-1]
		mid := (q.X + p.X) / 2
		fmt.Fprintf(&b, " C%d,%d %d,%d %d,%d", mid, q.Y, mid, p.Y, p.X, p.Y)
	}
	return b.String()
}

// graphLayout is a DAG drawn left to right: a column per layer, the tasks of a column
// ordered to keep edges from crossing.
type graphLayout struct {
	Width, Height int
	Nodes         []placedNode
	Edges         []placedEdge
}

// layoutGraph places tasks in layers (a task one column right of the furthest task it
// needs), adds a virtual node where an edge crosses a layer, orders each layer by the
// barycentre of its neighbours (sweeping right, then left, a few times), then assigns
// coordinates. It is deterministic: the same tasks in the same order give the same
// picture. Needs naming unknown tasks are ignored; a cycle (which validation prevents)
// puts its tasks in the last layer rather than failing.
func layoutGraph(tasks []graphTask) graphLayout {
	n := len(tasks)
	if n == 0 {
		return graphLayout{Width: 2 * graphPad, Height: 2 * graphPad}
	}
	index := make(map[string]int, n)
	for i, t := range tasks {
		if _, dup := index[t.ID]; !dup {
			index[t.ID] = i
		}
	}
	// Edges by index, de-duplicated, unknown needs dropped.
	ups := make([][]int, n)
	downs := make([][]int, n)
	for i, t := range tasks {
		seen := map[int]bool{}
		for _, need := range t.Needs {
			j, ok := index[need]
			if !ok || j == i || seen[j] {
				continue
			}
			seen[j] = true
			ups[i] = append(ups[i], j)
			downs[j] = append(downs[j], i)
		}
	}
	// Longest-path layering in topological order (Kahn, file order among the ready).
	layer := make([]int, n)
	indeg := make([]int, n)
	for i := range tasks {
		indeg[i] = len(ups[i])
	}
	var ready []int
	for i := range tasks {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := make([]bool, n)
	maxLayer := 0
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		done[i] = true
		for _, u := range ups[i] {
			if layer[u]+1 > layer[i] {
				layer[i] = layer[u] + 1
			}
		}
		maxLayer = max(maxLayer, layer[i])
		for _, d := range downs[i] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	cyclic := false
	for i := range tasks {
		if !done[i] {
			cyclic = true
		}
	}
	if cyclic {
		maxLayer++
		for i := range tasks {
			if !done[i] {
				layer[i] = maxLayer
			}
		}
	}

	// Vertices: the tasks, then one virtual vertex per layer an edge crosses.
	type vertex struct {
		task  int // -1 for a virtual vertex
		layer int
		ups   []int
		downs []int
	}
	verts := make([]vertex, n)
	for i := range tasks {
		verts[i] = vertex{task: i, layer: layer[i]}
	}
	type chain struct {
		from, to int
		via      []int
	}
	var chains []chain
	for i := range tasks {
		for _, u := range ups[i] {
			c := chain{from: u, to: i}
			prev := u
			if layer[u] < layer[i] {
				for l := layer[u] + 1; l < layer[i]; l++ {
					verts = append(verts, vertex{task: -1, layer: l})
					v := len(verts) - 1
					c.via = append(c.via, v)
					verts[prev].downs = append(verts[prev].downs, v)
					verts[v].ups = append(verts[v].ups, prev)
					prev = v
				}
				verts[prev].downs = append(verts[prev].downs, i)
				verts[i].ups = append(verts[i].ups, prev)
			}
			chains = append(chains, c)
		}
	}
	layers := make([][]int, maxLayer+1)
	for v := range verts {
		layers[verts[v].layer] = append(layers[verts[v].layer], v)
	}
	pos := make([]float64, len(verts))
	setPos := func(l []int) {
		for k, v := range l {
			pos[v] = float64(k)
		}
	}
	for _, l := range layers {
		setPos(l)
	}
	bary := func(v int, nb []int) (float64, bool) {
		if len(nb) == 0 {
			return 0, false
		}
		s := 0.0
		for _, u := range nb {
			s += pos[u]
		}
		return s / float64(len(nb)), true
	}
	sortLayer := func(l []int, down bool) {
		key := make(map[int]float64, len(l))
		for _, v := range l {
			nb := verts[v].ups
			if !down {
				nb = verts[v].downs
			}
			if b, ok := bary(v, nb); ok {
				key[v] = b
			} else {
				key[v] = pos[v] // keeps its place
			}
		}
		sort.SliceStable(l, func(a, b int) bool { return key[l[a]] < key[l[b]] })
		setPos(l)
	}
	for range 6 {
		for k := 1; k < len(layers); k++ {
			sortLayer(layers[k], true)
		}
		for k := len(layers) - 2; k >= 0; k-- {
			sortLayer(layers[k], false)
		}
	}

	// Coordinates: each column centred on the tallest one. Virtual vertices take a row
	// like a task, so an edge never runs through a box.
	rows := 0
	for _, l := range layers {
		rows = max(rows, len(l))
	}
	rowH := nodeH + rowGap
	xy := make([]point, len(verts))
	for k, l := range layers {
		off := (rows - len(l)) * rowH / 2
		for j, v := range l {
			xy[v] = point{graphPad + k*(nodeW+colGap), graphPad + off + j*rowH}
		}
	}
	out := graphLayout{
		Width:  2*graphPad + len(layers)*nodeW + (len(layers)-1)*colGap,
		Height: 2*graphPad + rows*rowH - rowGap,
	}
	for i, t := range tasks {
		out.Nodes = append(out.Nodes, placedNode{ID: t.ID, X: xy[i].X, Y: xy[i].Y, Layer: layer[i]})
	}
	for _, c := range chains {
		e := placedEdge{From: tasks[c.from].ID, To: tasks[c.to].ID}
		a, b := xy[c.from], xy[c.to]
		e.Points = append(e.Points, point{a.X + nodeW, a.Y + nodeH/2})
		for _, v := range c.via {
			e.Points = append(e.Points, point{xy[v].X, xy[v].Y + nodeH/2}, point{xy[v].X + nodeW, xy[v].Y + nodeH/2})
		}
		e.Points = append(e.Points, point{b.X, b.Y + nodeH/2})
		out.Edges = append(out.Edges, e)
	}
	return out
}

// shortLabel cuts a task id to fit in a node.
func shortLabel(id string) string {
	r := []rune(id)
	if len(r) <= labelMax {
		return id
	}
	return string(r[:labelMax-1]) + "…"
}

// crossings counts pairs of edges that cross between adjacent columns; tests use it to
// check that ordering helps.
func crossings(g graphLayout) int {
	type seg struct{ x0, y0, y1 int }
	var segs []seg
	for _, e := range g.Edges {
		for i := 1; i < len(e.Points); i++ {
			p, q := e.Points[i-1], e.Points[i]
			if p.X != q.X {
				segs = append(segs, seg{p.X, p.Y, q.Y})
			}
		}
	}
	n := 0
	for i := range segs {
		for j := i + 1; j < len(segs); j++ {
			a, b := segs[i], segs[j]
			if a.x0 == b.x0 && (a.y0-b.y0)*(a.y1-b.y1) < 0 {
				n++
			}
		}
	}
	return n
}
