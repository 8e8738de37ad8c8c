package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/internal/taskrun"
)

// bundleRoot is the bundle folder of a deploy or validate: the one folder named, else the
// folder found above a lone file (bundle.FindRoot); "" when several paths are named.
func bundleRoot(paths []string) string {
	if len(paths) != 1 {
		return ""
	}
	if st, err := os.Stat(paths[0]); err == nil && st.IsDir() {
		return paths[0]
	}
	return bundle.FindRoot(paths[0])
}

// parseOptionsIn are parseOptions with the files that tasks name checked in the bundle
// folder root ("" : not checked).
func parseOptionsIn(root string) dag.Options {
	o := parseOptions()
	if root != "" {
		o.CheckFiles = taskrun.CheckBundleFiles(root, validationPython())
	}
	return o
}

// validationPython is the interpreter validation parses Python modules with ("" when none).
func validationPython() string {
	py := os.Getenv(taskrun.EnvPython)
	if py == "" {
		py = "python3"
	}
	return py
}

// pinLocal pins each DAG to its folder used in place: `updraft test` and `updraft dev` run the
// files as they are now, so an edit shows at the next attempt with no deploy.
func pinLocal(dags []*dag.DAG, root string) error {
	for _, d := range dags {
		if err := bundle.Pin(d, root, ""); err != nil {
			return err
		}
	}
	return nil
}

// storeBundle builds root's bundle and stores it in the bundle bucket, returning its hash.
func (a *App) storeBundle(ctx context.Context, root string) (string, error) {
	bucket := a.Getenv(bundle.EnvBucket)
	if bucket == "" {
		return "", fmt.Errorf("no bundle bucket: set %s (Terraform's bundle_bucket output), or run `make dev`", bundle.EnvBucket)
	}
	if h := a.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
		if err := os.Setenv("STORAGE_EMULATOR_HOST", h); err != nil { // the storage client reads it
			return "", err
		}
	}
	start := time.Now()
	b, err := bundle.Build(root)
	if err != nil {
		return "", err
	}
	built := time.Since(start)
	store, err := gcsbundles.Open(ctx, bucket)
	if err != nil {
		return "", err
	}
	defer store.Close()
	if err := store.Put(ctx, b.Hash, b.Archive); err != nil {
		return "", err
	}
	fmt.Fprintf(a.Stdout, "bundle    %s: %d files, %s archived (built in %s, stored in %s)\n", b.Hash[:12], len(b.Files),
		humanBytes(len(b.Archive)), built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	return b.Hash, nil
}

func humanBytes(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// hasCode reports whether a folder holds code a bundle would carry (Python, SQL, scripts).
func hasCode(root string) bool {
	files, err := bundle.List(root)
	if err != nil {
		return false
	}
	for _, f := range files {
		switch path.Ext(f.Path) {
		case ".py", ".sql", ".sh", ".bash":
			return true
		}
	}
	return false
}
