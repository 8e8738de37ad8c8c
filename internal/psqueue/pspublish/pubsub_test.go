package pspublish

import (
	"strings"
	"testing"
)

// Publishing itself is tested against the Pub/Sub emulator in tasks/pubsubtest.

func TestPubSubPublishCheck(t *testing.T) {
	cases := []struct {
		with map[string]any
		args []string
	}{
		{map[string]any{}, []string{"topic", "messages"}},
		{map[string]any{"topic": "orders", "messages": []any{}}, []string{"messages"}},
		{map[string]any{"topic": "orders", "messages": "x"}, []string{"messages"}},
		{map[string]any{"topic": "orders", "messages": []any{3}}, []string{"messages[0]"}},
		{map[string]any{"topic": "orders", "messages": []any{"a", map[string]any{"body": "x"}}}, []string{"messages[1].body"}},
		{map[string]any{"topic": "orders", "messages": []any{map[string]any{"data": "x", "attributes": "k=v"}}}, []string{"messages[0].attributes"}},
		{map[string]any{"topic": "orders", "messages": []any{map[string]any{"data": "x", "ordering_key": 1}}}, []string{"messages[0].ordering_key"}},
		{map[string]any{"topic": "orders", "messages": []any{map[string]any{"attributes": map[string]any{}}}}, []string{"messages[0]"}},
		{map[string]any{"topic": "projects/p/subscriptions/s", "messages": []any{"x"}}, []string{"topic"}},
		{map[string]any{"topic": "goog-topic", "messages": []any{"x"}}, []string{"topic"}},
		{map[string]any{"topic": "projects/a-proj/topics/topic1", "project": "b-proj", "messages": []any{"x"}}, []string{"topic"}},
		{map[string]any{"topic": "orders", "project": 7, "messages": []any{"x"}}, []string{"project"}},
		{map[string]any{"topic": "orders", "messages": []any{"x"}, "message": "y"}, []string{"message"}},
	}
	for _, c := range cases {
		ps := checkPubSubPublish(c.with)
		var got []string
		for _, p := range ps {
			got = append(got, p.Arg)
		}
		if strings.Join(got, ",") != strings.Join(c.args, ",") {
			t.Errorf("%v: problems on %v (%+v), want on %v", c.with, got, ps, c.args)
		}
	}
	for _, ok := range []map[string]any{
		{"topic": "orders-ready", "messages": []any{"x"}},
		{"topic": "{{ var \"topic\" }}", "project": "{{ var \"project\" }}", "messages": []any{"{{ .ds }}"}},
		{"topic": "projects/my-proj/topics/orders", "messages": `["a", {"data": {"n": 1}}]`},
		{"topic": "orders", "messages": `{{ toJSON (xcom "build").messages }}`},
		{"topic": "projects/a-proj/topics/topic1", "project": "a-proj", "messages": []any{"x"}},
		{"topic": "projects/a-proj/topics/topic1", "project": "{{ var \"project\" }}", "messages": []any{"x"}},
		{"topic": "orders", "messages": []any{map[string]any{"data": map[string]any{"ds": "{{ .ds }}"},
			"attributes": map[string]any{"run": "{{ .run_id }}"}, "ordering_key": "{{ .ds }}"}}},
	} {
		if ps := checkPubSubPublish(ok); len(ps) != 0 {
			t.Errorf("%v: unexpected problems %+v", ok, ps)
		}
	}
}

func TestPubSubMessageFromArgs(t *testing.T) {
	m, err := pubsubMessage(0, map[string]any{"data": []any{1, "two"}, "attributes": map[string]any{"n": 2, "ok": true, "obj": map[string]any{"a": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `[1,"two"]` || m.Attributes["n"] != "2" || m.Attributes["ok"] != "true" || m.Attributes["obj"] != `{"a":1}` {
		t.Errorf("message: data %s attributes %v", m.Data, m.Attributes)
	}
	if _, err := pubsubMessage(2, ""); err == nil || !strings.Contains(err.Error(), "messages[2]") {
		t.Errorf("empty message after rendering: %v", err)
	}
	if _, err := pubsubMessage(1, map[string]any{"data": ""}); err == nil {
		t.Error("a message with empty data and no attributes was accepted")
	}
}
