package tasktypes

import (
	"strings"
	"testing"
)

// TestBuiltinsHoldEveryType: the worker's registry has the runtime's types and every
// adapter's, and each inline one is bounded (its time counts inside Dispatch's push request).
func TestBuiltinsHoldEveryType(t *testing.T) {
	r := Builtins()
	want := "bigquery.query branch cloudrun.job dag.trigger go http pubsub.publish python sensor.bigquery_table sensor.dag_run sensor.http sensor.time shell slack.post"
	if got := strings.Join(r.Names(), " "); got != want {
		t.Errorf("types %s\nwant %s", got, want)
	}
	for _, typ := range r.Types() {
		if typ.Inline && typ.InlineLimit <= 0 {
			t.Errorf("%s has no inline limit", typ.Name)
		}
		// The sensors are inline types: a poke must not need a container.
		if strings.HasPrefix(typ.Name, "sensor.") && (!typ.Inline || typ.Run == nil || typ.Check == nil) {
			t.Errorf("%s: inline %v, run %v, check %v", typ.Name, typ.Inline, typ.Run != nil, typ.Check != nil)
		}
	}
}
