package dag

import (
	"strings"
	"testing"
)

func TestResourcesShape(t *testing.T) {
	src := y("id: shaped", "owner: data@example.com", "defaults: {resources: {cpu: 2, memory: 4Gi}}", "tasks:",
		"  - {id: big, type: shell, with: {command: 'true'}, resources: {cpu: 4, memory: 8Gi}}",
		"  - {id: odd, type: shell, with: {command: 'true'}, resources: {cpu: 1, memory: 1536Mi}}",
		"  - {id: inherits, type: shell, with: {command: 'true'}}",
		"  - {id: named, type: shell, with: {command: 'true'}, resources: large}")
	d, err := Parse("shaped.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, task := range d.Tasks {
		got[task.ID] = task.Resources
	}
	want := map[string]string{"big": "cpu=4,memory=8Gi", "odd": "cpu=1,memory=1536Mi", "inherits": "cpu=2,memory=4Gi", "named": "large"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: resources %q, want %q", id, got[id], w)
		}
	}
	s, ok := ParseShape(got["big"])
	if !ok || s != (Shape{CPU: 4, MemoryMiB: 8192}) || s.Slug() != "c4-m8gi" {
		t.Errorf("ParseShape(%q) = %+v, %v", got["big"], s, ok)
	}
	if _, ok := ParseShape("large"); ok {
		t.Error("a class name parsed as a shape")
	}
}

// An invalid combination is an error at its line that lists the valid ones.
func TestResourcesShapeInvalid(t *testing.T) {
	for _, tc := range []struct{ res, want string }{
		{"{cpu: 4, memory: 1Gi}", "resources {cpu: 4, memory: 1Gi} is not a combination Cloud Run allows: cpu 4 needs memory from 2Gi to 16Gi, not 1Gi"},
		{"{cpu: 1, memory: 8Gi}", "cpu 1 needs memory from 512Mi to 4Gi, not 8Gi"},
		{"{cpu: 3, memory: 4Gi}", "cpu 3 is not one Cloud Run jobs offer (1, 2, 4, 6 or 8)"},
		{"{cpu: 2, memory: 256Mi}", "cpu 2 needs memory from 512Mi to 8Gi"},
		{"{cpu: 2, memory: 4GB}", `memory "4GB" is not a whole number of Gi or Mi`},
		{"{cpu: two, memory: 4Gi}", "cpu must be a whole number of vCPUs"},
		{"{cpu: 2}", "memory is required with cpu"},
		{"{cpu: 2, memory: 4Gi, gpu: 1}", `unknown field "gpu"`},
	} {
		src := y("id: bad_shape", "owner: data@example.com", "tasks:", "  - id: a", "    type: shell", "    with: {command: 'true'}", "    resources: "+tc.res)
		_, err := Parse("bad_shape.yaml", []byte(src), Options{})
		if err == nil {
			t.Errorf("%s: parsed", tc.res)
			continue
		}
		msg := err.Error()
		if n := strings.Count(msg, "\n") + 1; n != 1 {
			t.Errorf("%s: %d problems, want 1: %s", tc.res, n, msg)
		}
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "bad_shape.yaml:7") {
			t.Errorf("%s: error %q, want %q at bad_shape.yaml:7", tc.res, msg, tc.want)
		}
		if strings.Contains(tc.want, "Cloud Run allows") && !strings.Contains(msg, "cpu 4 with memory 2Gi to 16Gi; cpu 6 with memory 4Gi to 24Gi") {
			t.Errorf("%s: error %q does not list the valid combinations", tc.res, msg)
		}
	}
}
