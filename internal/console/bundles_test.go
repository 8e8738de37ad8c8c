package console_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/console/consoletest"
	"github.com/updraft-dev/updraft/internal/dag"
)

func TestCodePageListsTheVersionsBundleFiles(t *testing.T) {
	b := consoletest.New(t)
	b.Grant(t, viewer.Email, access.Viewer)
	dir := t.TempDir()
	src := "id: bundled_code\nowner: owner@example.com\ntasks:\n  - {id: a, type: python, with: {callable: lib.helpers:f}}\n"
	for name, body := range map[string]string{
		"bundled_code.yaml": src, "lib/helpers.py": "def f():\n    return 1\n",
		"lib/__pycache__/helpers.cpython-311.pyc": "\x00\x01", "data.bin": "\xff\xfe\x00",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := dag.Parse(filepath.Join(dir, "bundled_code.yaml"), []byte(src), dag.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Pin(d, dir, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Engine.Deploy(b.Ctx, d, []byte(src)); err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Config{Engine: b.Engine, Store: b.Store, Access: b.Access, Bundles: &bundle.Cache{Dir: t.TempDir()}})
	files, err := c.BundleFiles(b.Ctx, viewer, "bundled_code")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]console.BundleFile{}
	for _, f := range files {
		got[f.Path] = f
	}
	if len(files) != 3 || got["lib/helpers.py"].Text != "def f():\n    return 1\n" || got["data.bin"].Shown || !got["bundled_code.yaml"].Shown {
		t.Errorf("bundle files %+v; want the YAML and helpers.py shown, data.bin listed only, __pycache__ left out", files)
	}
	det, err := c.DAG(b.Ctx, viewer, "bundled_code")
	if err != nil || det.Bundle != "dir:"+dir {
		t.Errorf("DAG page bundle %q %v; want dir:%s", det.Bundle, err, dir)
	}
}
