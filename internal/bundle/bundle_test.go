package bundle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-dev/updraft/emulators/gcs"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func paths(fs []bundle.File) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return strings.Join(out, " ")
}

func TestBuildIsDeterministicAndIgnores(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"dags/orders.yaml":            "id: orders\n",
		"lib/helpers.py":              "def f(): pass\n",
		"lib/__pycache__/helpers.pyc": "junk",
		"lib/old.pyc":                 "junk",
		".git/HEAD":                   "ref",
		"data/big.csv":                "1,2\n",
		"data/keep.csv":               "3,4\n",
		"notes/a.tmp":                 "x",
		"sql/q.sql":                   "select 1",
		".updraftignore":              "# data stays out\ndata/\n*.tmp\n",
	}
	a, b := t.TempDir(), t.TempDir()
	write(t, a, files)
	write(t, b, files)
	ba, err := bundle.Build(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := bundle.Build(b)
	if err != nil {
		t.Fatal(err)
	}
	if ba.Hash != bb.Hash {
		t.Errorf("the same files in two folders hash %s and %s", ba.Hash, bb.Hash)
	}
	if got, want := paths(ba.Files), ".updraftignore dags/orders.yaml lib/helpers.py sql/q.sql"; got != want {
		t.Errorf("bundle holds %q; want %q", got, want)
	}
	write(t, b, map[string]string{"lib/helpers.py": "def f(): return 1\n"})
	if bc, _ := bundle.Build(b); bc.Hash == ba.Hash {
		t.Error("editing a file kept the hash")
	}
	// A negation re-includes a file the defaults leave out.
	write(t, b, map[string]string{".updraftignore": "!keep.pyc\n", "keep.pyc": "k"})
	if bc, _ := bundle.Build(b); !strings.Contains(paths(bc.Files), "keep.pyc") {
		t.Errorf("!keep.pyc did not re-include it: %s", paths(bc.Files))
	}
}

func TestIgnorePatterns(t *testing.T) {
	t.Parallel()
	ig := bundle.ParseIgnore(bundle.DefaultIgnores, []byte("/build\nlogs/**/*.log\ndocs/*.md\n!docs/keep.md\n"))
	for _, c := range []struct {
		path string
		dir  bool
		want bool
	}{
		{"build", true, true}, {"src/build", true, false}, {"logs/a/b/x.log", false, true}, {"logs/x.log", false, true},
		{"docs/a.md", false, true}, {"docs/keep.md", false, false}, {"a/b/__pycache__", true, true},
		{"x/y.pyc", false, true}, {"x/y.py", false, false}, {".git", true, true},
	} {
		if got := ig.Match(c.path, c.dir); got != c.want {
			t.Errorf("Match(%q) = %v; want %v", c.path, got, c.want)
		}
	}
}

func TestTooBigNamesTheBiggestFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, map[string]string{"dag.yaml": "id: x\n"})
	f, err := os.Create(filepath.Join(dir, "dump.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(bundle.MaxBytes + 1); err != nil { // sparse: no real disk used
		t.Fatal(err)
	}
	f.Close()
	_, err = bundle.Build(dir)
	var big *bundle.TooBigError
	if !errors.As(err, &big) || !strings.Contains(err.Error(), "dump.parquet (100.0 MiB)") || !strings.Contains(err.Error(), ".updraftignore") {
		t.Fatalf("got %v; want a too-big error naming dump.parquet and the ignore file", err)
	}
}

func TestCacheFetchesVerifiesAndUnpacksOnce(t *testing.T) {
	srv, err := gcs.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	t.Setenv(gcs.EnvVar, srv.Host) // the real client finds the stand-in by itself
	ctx := context.Background()
	store, err := gcsbundles.Open(ctx, gcs.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	src := t.TempDir()
	write(t, src, map[string]string{"scripts/step.sh": "echo hi\n", "lib/helpers.py": "X = 1\n"})
	if err := os.Chmod(filepath.Join(src, "scripts/step.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Build(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, b.Hash, b.Archive); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, b.Hash, b.Archive); err != nil { // again: a no-op
		t.Fatalf("second put: %v", err)
	}
	cache := &bundle.Cache{Dir: t.TempDir(), Store: store}
	root, err := cache.Root(ctx, bundle.Ref{Hash: b.Hash})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "lib/helpers.py"))
	if err != nil || string(got) != "X = 1\n" {
		t.Fatalf("unpacked helpers.py: %q %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(root, "scripts/step.sh")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("step.sh lost its exec bit: %v %v", st.Mode(), err)
	}
	// A warm cache does not fetch again: with the store gone it still answers.
	warm := &bundle.Cache{Dir: cache.Dir}
	if r2, err := warm.Root(ctx, bundle.Ref{Hash: b.Hash}); err != nil || r2 != root {
		t.Fatalf("warm cache: %s %v", r2, err)
	}

	// Another bundle's bytes stored under this one's name are refused.
	other := t.TempDir()
	write(t, other, map[string]string{"lib/helpers.py": "import os; os.system('rm -rf /')\n"})
	ob, _ := bundle.Build(other)
	fake := strings.Repeat("ab", 32)
	if err := store.PutRaw(ctx, fake, ob.Archive); err != nil {
		t.Fatal(err)
	}
	_, err = (&bundle.Cache{Dir: t.TempDir(), Store: store}).Root(ctx, bundle.Ref{Hash: fake})
	if !errors.Is(err, bundle.ErrTampered) {
		t.Fatalf("tampered bundle: %v; want ErrTampered", err)
	}
	if _, err := (&bundle.Cache{Dir: t.TempDir(), Store: store}).Root(ctx, bundle.Ref{Hash: strings.Repeat("cd", 32)}); !errors.Is(err, gcsbundles.ErrNotFound) {
		t.Fatalf("missing bundle: %v; want ErrNotFound", err)
	}
}
