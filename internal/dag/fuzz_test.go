package dag

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.y*ml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n",
		"id: d\nowner: a@b.co\ntasks: [{id: a, type: noop}]\n",
		"id: d\nowner: a@b.co\ntasks: [{id: a, type: noop, needs: [b]}, {id: b, type: noop, needs: [a]}]\n",
		"id: d\nowner: a@b.co\nx-a: &a {retries: 1}\ntasks: [{<<: *a, id: a, type: shell, with: {command: '{{ xcom \"a\" }}'}}]\n",
		"a: &a [*a]\n",
		"id: d\nowner: a@b.co\nstart: 2025-01-01\nend: 2024-01-01\ntimezone: Asia/Seoul\ntasks: [{id: a, type: noop, for_each: '{{ range }}'}]\n",
	} {
		f.Add([]byte(s))
	}
	opts := Options{ValidateCron: cronStub}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("f.yaml", data, opts)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not a non-empty Problems: %#v", err)
			}
			if d != nil {
				t.Fatal("a DAG along with problems")
			}
			for i, p := range ps {
				if p.File != "f.yaml" || p.Msg == "" || p.Line < 0 {
					t.Fatalf("malformed problem %#v", p)
				}
				if i > 0 && ps[i-1].Line > p.Line {
					t.Fatalf("problems not sorted:\n%v", ps)
				}
			}
			return
		}
		if d == nil {
			t.Fatal("nil DAG and nil error")
		}
		if err := ValidateID(d.ID); err != nil {
			t.Fatalf("DAG %v", err)
		}
		if len(d.Tasks) == 0 {
			t.Fatal("a DAG without tasks")
		}
		ids := map[string]bool{}
		for _, task := range d.Tasks {
			if err := ValidateID(task.ID); err != nil {
				t.Fatalf("task %v", err)
			}
			if ids[task.ID] {
				t.Fatalf("duplicate task id %q", task.ID)
			}
			ids[task.ID] = true
			if task.Resources == "" || task.TriggerRule == "" || task.Type == "" {
				t.Fatalf("task without defaults: %+v", task)
			}
		}
		for _, task := range d.Tasks {
			for _, up := range task.Needs {
				if !ids[up] || up == task.ID {
					t.Fatalf("task %q needs %q", task.ID, up)
				}
			}
		}
		if checkEmail(d.Owner) != "" {
			t.Fatalf("owner %q", d.Owner)
		}
		if d.Start != nil && d.End != nil && d.End.Before(*d.Start) {
			t.Fatal("end before start")
		}
	})
}
