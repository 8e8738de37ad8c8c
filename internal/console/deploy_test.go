package console_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
	"github.com/updraft-dev/updraft/internal/fsstore"
)

const goodDAG = `id: good
owner: owner@example.com
tasks:
  - {id: hello, type: shell, with: {command: "echo hello"}}
`

// badDAG has an unknown field on line 3.
const badDAG = `id: bad
owner: owner@example.com
schedul: "0 3 * * *"
tasks:
  - {id: a, type: shell, with: {command: "echo a"}}
`

// dupDAG defines the id good.yaml defines, on line 2.
const dupDAG = `# the same id as good.yaml
id: good
owner: owner@example.com
tasks:
  - {id: b, type: shell, with: {command: "echo b"}}
`

// deployConsole is a console whose DAG list shows the import errors deploys store.
func deployConsole(b *consoletest.Bundle) *console.Console {
	return console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Now: b.Clock.Now,
		ImportErrors: console.StoredImportErrors(b.Store)})
}

func auditOf(t *testing.T, b *consoletest.Bundle, action string) []fsstore.AuditEntry {
	t.Helper()
	es, err := b.Access.Audit(b.Ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []fsstore.AuditEntry
	for _, e := range es {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func outcomes(r *console.DeployReport) map[string]string {
	m := map[string]string{}
	for _, f := range r.Files {
		m[f.File] = f.Outcome
	}
	return m
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	b := setup(t) // etl is deployed, from test.yaml
	c := deployConsole(b)
	ctx := b.Ctx
	files := []console.DAGFile{
		{Name: "etl.yaml", Source: etlDAG}, {Name: "good.yaml", Source: goodDAG},
		{Name: "bad.yaml", Source: badDAG}, {Name: "dup.yaml", Source: dupDAG},
	}

	// An operator may not deploy: refused and audited.
	_, err := c.Deploy(ctx, operator, console.DeployRequest{Files: files})
	wantCode(t, err, console.CodeForbidden)
	if es := auditOf(t, b, console.ActionDeploy); len(es) != 1 || es[0].Who != operator.Email || es[0].Result != access.ResultRefused {
		t.Fatalf("audit = %+v; want the operator's refused deploy", es)
	}

	// Good files deploy; bad ones are reported with file:line; no pruning while a file fails.
	rep, err := c.Deploy(ctx, admin, console.DeployRequest{Files: files, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	got := outcomes(rep)
	if got["etl.yaml"] != "unchanged" || got["good.yaml"] != "created" || got["bad.yaml"] != "failed" || got["dup.yaml"] != "failed" {
		t.Fatalf("outcomes = %v", got)
	}
	if rep.Created != 1 || rep.Unchanged != 1 || rep.Failed != 2 || len(rep.Pruned) != 0 {
		t.Fatalf("report = %+v", rep)
	}
	if p := rep.Files[2].Problems; len(p) == 0 || !strings.HasPrefix(p[0].String(), "bad.yaml:3: ") || !strings.Contains(p[0].String(), "schedul") {
		t.Errorf("bad.yaml's problems = %+v", p)
	}
	if p := rep.Files[3].Problems; len(p) != 1 || p[0].Line != 2 || !strings.Contains(p[0].Message, "already defined in good.yaml") {
		t.Errorf("dup.yaml's problems = %+v", p)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "not pruning") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	es := auditOf(t, b, console.ActionDeploy)
	i := slices.IndexFunc(es, func(e fsstore.AuditEntry) bool { return e.Who == admin.Email })
	if len(es) != 2 || i < 0 || es[i].Result != access.ResultOK || !strings.HasPrefix(es[i].From, "ui") ||
		!strings.Contains(es[i].Detail, "1 created, 0 updated, 1 unchanged, 2 failed") || !strings.Contains(es[i].Detail, "bad.yaml") {
		t.Fatalf("audit = %+v; want the admin's deploy with its counts", es)
	}

	// The DAG list shows the stored import errors, whoever asks and on whichever instance.
	page, err := deployConsole(b).ListDAGs(ctx, viewer, console.DAGQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, ie := range page.ImportErrors {
		shown = append(shown, ie.String())
	}
	if len(shown) < 2 || !strings.HasPrefix(shown[0], "bad.yaml:3: ") || !strings.HasPrefix(shown[len(shown)-1], "dup.yaml:2: ") {
		t.Fatalf("import errors = %q", shown)
	}
	if len(page.DAGs) != 2 {
		t.Fatalf("DAGs = %+v; want etl and good", page.DAGs)
	}

	// A dry run checks and previews, and writes nothing.
	_, w0 := b.Store.Counts()
	changed := strings.Replace(goodDAG, "echo hello", "echo hi", 1)
	dry, err := c.Deploy(ctx, admin, console.DeployRequest{DryRun: true, Prune: true, Files: []console.DAGFile{
		{Name: "good.yaml", Source: changed}, {Name: "new.yaml", Source: strings.Replace(goodDAG, "id: good", "id: new", 1)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, w1 := b.Store.Counts(); w1 != w0 {
		t.Fatalf("the dry run wrote %d documents", w1-w0)
	}
	if got := outcomes(dry); !dry.DryRun || got["good.yaml"] != "updated" || got["new.yaml"] != "created" ||
		strings.Join(dry.Pruned, ",") != "etl" || !strings.HasPrefix(dry.Summary, "would deploy") {
		t.Fatalf("dry run = %+v", dry)
	}

	// Every file loads: the import errors are cleared, and prune deactivates the DAGs whose
	// files are gone. Deploying again changes nothing.
	rep, err = c.Deploy(ctx, admin, console.DeployRequest{Files: []console.DAGFile{{Name: "good.yaml", Source: goodDAG}}, Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(rep); got["good.yaml"] != "unchanged" || rep.Failed != 0 || strings.Join(rep.Pruned, ",") != "etl" {
		t.Fatalf("report = %+v", rep)
	}
	page, err = c.ListDAGs(ctx, viewer, console.DAGQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.ImportErrors) != 0 {
		t.Fatalf("import errors after a clean deploy = %+v", page.ImportErrors)
	}
	for _, d := range page.DAGs {
		if d.DagID == "etl" && d.Active {
			t.Error("etl is still active after a prune without its file")
		}
	}
}

func TestDeployBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := deployConsole(b)
	big := strings.Repeat("#", console.MaxDeployFileBytes+1)
	tooMany := make([]console.DAGFile, console.MaxDeployFiles+1)
	for i := range tooMany {
		tooMany[i] = console.DAGFile{Name: strings.Repeat("x", i+1) + ".yaml", Source: goodDAG}
	}
	for _, tc := range []struct {
		name  string
		files []console.DAGFile
		want  string
	}{
		{"no files", nil, "files is empty"},
		{"too many", tooMany, "at most 500"},
		{"no name", []console.DAGFile{{Source: goodDAG}}, "files[0] has no name"},
		{"control character", []console.DAGFile{{Name: "a\nb.yaml", Source: goodDAG}}, "files[0].name"},
		{"too big", []console.DAGFile{{Name: "a.yaml", Source: goodDAG}, {Name: "big.yaml", Source: big}}, "files[1] (big.yaml)"},
		{"twice", []console.DAGFile{{Name: "a.yaml", Source: goodDAG}, {Name: "a.yaml", Source: goodDAG}}, "already sent as files[0]"},
	} {
		_, err := c.Deploy(b.Ctx, admin, console.DeployRequest{Files: tc.files})
		if ce := wantCode(t, err, console.CodeBadRequest); !strings.Contains(ce.Message, tc.want) {
			t.Errorf("%s: %q; want it to say %q", tc.name, ce.Message, tc.want)
		}
	}
}

func TestAttemptTryZeroIsTheLatest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.Trigger(t, "etl")
	b.Drive(t, r)
	if _, err := b.Console.Clear(b.Ctx, operator, console.ClearRequest{DagID: "etl", RunID: r.RunID, TaskIDs: []string{"load"}}); err != nil {
		t.Fatal(err)
	}
	b.Drive(t, r)
	a, err := b.Console.Attempt(b.Ctx, viewer, "etl", r.RunID, "load", 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.Try != 2 || !a.Current {
		t.Fatalf("try 0 gave try %d (current %v); want the latest, 2", a.Try, a.Current)
	}
	if l, err := b.Console.Log(b.Ctx, viewer, "etl", r.RunID, "load", 0, 0); err != nil || len(l.Entries) == 0 {
		t.Fatalf("log of try 0: %+v, %v", l, err)
	}
}

func TestDirImportErrorsAreRelative(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "team", "bad.yaml"), []byte(badDAG), 0o644); err != nil {
		t.Fatal(err)
	}
	ies, err := console.DirImportErrors(dir, console.DefaultDAGOptions())(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ies) == 0 || ies[0].File != "team/bad.yaml" || ies[0].Line != 3 {
		t.Fatalf("import errors = %+v; want team/bad.yaml:3", ies)
	}
}
