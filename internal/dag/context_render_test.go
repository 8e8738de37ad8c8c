package dag_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/render"
)

// TestTemplateContextMatchesRender keeps the names validation accepts (dag.TemplateContext)
// equal to what a template sees at run time (render.Data), so `dags validate` neither passes
// a name that fails later nor refuses one that works.
func TestTemplateContextMatchesRender(t *testing.T) {
	t.Parallel()
	i := 0
	data := render.Data(render.Run{Index: &i, Item: "x"})
	var got []string
	for k := range data {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(dag.TemplateContext)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("render.Data has %v;\ndag.TemplateContext has %v", got, want)
	}
	for _, name := range []string{"dag_run", "ti", "dag"} {
		m, ok := data[name].(map[string]any)
		if !ok {
			t.Fatalf(".%s is not a map", name)
		}
		for k := range m {
			if !dag.ValidContextField(name, k) {
				t.Errorf(".%s.%s exists at run time but validation refuses it", name, k)
			}
		}
	}
}
