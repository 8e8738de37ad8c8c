package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/dag"
)

// TestDAGListHidesTestDAGs: the DAG list leaves out the test__ DAGs `updraft test` deployed,
// says how many it hid with a link that shows them (?all=1), and a search for them finds them.
func TestDAGListHidesTestDAGs(t *testing.T) {
	u := startUI(t)
	src := "id: test__ok_dag\nowner: owner@example.com\ntasks:\n  - {id: a, type: noop}\n"
	d, err := dag.Parse("test__ok_dag.yaml", []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.stack.Engine.Deploy(u.ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(u.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	const row = `data-dag="test__ok_dag"`
	page := get("/")
	if strings.Contains(page, row) || !strings.Contains(page, `data-dag="ok_dag"`) {
		t.Errorf("the default list should show ok_dag and hide test__ok_dag")
	}
	if !strings.Contains(page, "1 test DAG from updraft test hidden") || !strings.Contains(page, `href="/?all=1"`) {
		t.Errorf("the list should say it hid a test DAG and link to ?all=1:\n%s", page)
	}
	for _, path := range []string{"/?all=1", "/?q=test__"} {
		if p := get(path); !strings.Contains(p, row) || strings.Contains(p, "hidden: show") {
			t.Errorf("GET %s should list test__ok_dag", path)
		}
	}
}
