package dag

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files under a temporary directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFilesGoodAndBad(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"good.yaml":         y("id: good", "owner: a@example.com", "tasks: [{id: a, type: noop}]"),
		"bad.yaml":          y("id: bad", "owner: nobody", "tasks: [{id: a, type: noop, needs: [b]}]"),
		"team/nested.yml":   y("id: nested", "owner: a@example.com", "tasks: [{id: a, type: noop}]"),
		".hidden/skip.yaml": y("not: a dag"),
		".skip.yaml":        y("not: a dag"),
		"README.md":         "# not a DAG\n",
	})
	res, err := LoadFiles([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range res.DAGs {
		ids = append(ids, d.ID)
	}
	if strings.Join(ids, ",") != "good,nested" {
		t.Errorf("loaded %v, want good and nested", ids)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if len(res.Errors) != 1 || len(res.Errors[bad]) != 2 {
		t.Fatalf("errors %v, want two problems in %s", res.Errors, bad)
	}
	for _, p := range res.Errors[bad] {
		if p.File != bad {
			t.Errorf("problem file %q, want %q", p.File, bad)
		}
	}
	if got := res.Problems().Error(); !strings.Contains(got, bad+":2: owner: ") || !strings.Contains(got, bad+":3: tasks[0].needs: ") {
		t.Errorf("problems:\n%s", got)
	}
	if res.DAGs[1].Source.File != filepath.Join(dir, "team", "nested.yml") {
		t.Errorf("source %q", res.DAGs[1].Source.File)
	}
}

func TestLoadFilesDuplicateIDs(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"a.yaml": y("id: sales", "owner: a@example.com", "tasks: [{id: a, type: noop}]"),
		"b.yaml": y("# the same id again", "owner: a@example.com", "id: sales", "tasks: [{id: a, type: noop}]"),
		"c.yaml": y("id: other", "owner: a@example.com", "tasks: [{id: a, type: noop}]"),
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	// The directory and a file in it: each file is loaded once.
	res, err := LoadFiles([]string{dir, a}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.DAGs) != 2 || res.DAGs[0].Source.File != a || res.DAGs[1].ID != "other" {
		t.Errorf("DAGs %v", res.DAGs)
	}
	ps := res.Errors[b]
	if len(ps) != 1 || ps[0].Line != 3 || ps[0].Field != "id" || !strings.Contains(ps[0].Msg, `DAG id "sales" is already defined in `+a) {
		t.Errorf("errors of %s: %v", b, ps)
	}
}

func TestLoadFilesMissingPath(t *testing.T) {
	t.Parallel()
	_, err := LoadFiles([]string{filepath.Join(t.TempDir(), "nope")}, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "dag: load ") || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestLoadFilesExplicitFile(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"dag.txt": y("id: t", "owner: a@example.com", "tasks: [{id: a, type: noop}]")})
	res, err := LoadFiles([]string{filepath.Join(dir, "dag.txt")}, Options{})
	if err != nil || len(res.DAGs) != 1 || len(res.Errors) != 0 {
		t.Errorf("res %+v, err %v", res, err)
	}
}
