package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun"
)

// BundleRoots gives the folder holding a bundle's files on this machine (bundle.Cache).
type BundleRoots interface {
	Root(ctx context.Context, ref dag.BundleRef) (string, error)
}

// BundleFile is one file of a DAG version's bundle, as the code page shows it (read-only).
type BundleFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Text is the file's contents when it is UTF-8 text of at most 64 KiB.
	Text string `json:"text,omitempty"`
	// Shown is false for binary or larger files (their size only).
	Shown bool `json:"shown"`
}

const maxShownFile = 64 << 10

// BundleFiles lists the files of the bundle a DAG's deployed version runs with, and their
// text. A DAG deployed without its folder, or a console without a bundle store, has none.
func (c *Console) BundleFiles(ctx context.Context, who Caller, dagID string) ([]BundleFile, error) {
	if err := c.authRead(ctx, who); err != nil {
		return nil, err
	}
	if c.bundles == nil {
		return nil, nil
	}
	v, err := c.getDAG(ctx, dagID)
	if err != nil {
		return nil, err
	}
	ver, err := c.store.GetVersion(ctx, dagID, v.Rec.Version)
	if err != nil {
		return nil, AsError(err)
	}
	var d dag.DAG
	if err := json.Unmarshal([]byte(ver.SpecJSON), &d); err != nil || d.Bundle == nil {
		return nil, nil
	}
	root, err := c.bundles.Root(ctx, *d.Bundle)
	if err != nil {
		return nil, Errorf(CodeInternal, "bundle %s: %v", d.Bundle.Short(), err)
	}
	files, err := bundle.List(root) // a local folder minus what its bundle leaves out
	if err != nil {
		return nil, Errorf(CodeInternal, "bundle %s: %v", d.Bundle.Short(), err)
	}
	out := make([]BundleFile, 0, len(files))
	for _, f := range files {
		bf := BundleFile{Path: f.Path, Size: f.Size}
		if f.Size <= maxShownFile {
			if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Path))); err == nil && utf8.Valid(b) {
				bf.Text, bf.Shown = string(b), true
			}
		}
		out = append(out, bf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// bundleOptions are the parser's options for a deploy's files: with a bundle, the bundle is
// fetched (which verifies its hash) and the files tasks name are checked in it.
func (c *Console) bundleOptions(ctx context.Context, up *BundleUpload) (func(name string) dag.Options, error) {
	plain := func(string) dag.Options { return c.dagOpts }
	if up == nil {
		return plain, nil
	}
	if !hashPattern.MatchString(up.Hash) {
		return nil, Errorf(CodeBadRequest, "bundle.hash %q is not a bundle hash (64 hex digits)", up.Hash)
	}
	if c.bundles == nil {
		return plain, nil
	}
	root, err := c.bundles.Root(ctx, dag.BundleRef{Hash: up.Hash})
	if err != nil {
		return nil, Errorf(CodeBadRequest, "bundle %.12s: %v (upload it first: `updraft dags deploy` does)", up.Hash, err)
	}
	check := taskrun.CheckBundleFiles(root, "python3")
	return func(name string) dag.Options {
		o := c.dagOpts
		rel := relToRoot(name, up.Root)
		o.CheckFiles = func(_ string, typ string, with map[string]any) []dag.ArgProblem {
			return check(filepath.Join(root, filepath.FromSlash(rel)), typ, with)
		}
		return o
	}, nil
}

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// pinUpload pins a parsed file's DAG to the deploy's stored bundle.
func pinUpload(d *dag.DAG, up *BundleUpload, name string) error {
	if up == nil {
		return nil
	}
	rel := relToRoot(name, up.Root)
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("%s is not under the bundle root %q", name, up.Root)
	}
	bundle.PinStored(d, up.Hash, rel)
	return nil
}

func relToRoot(name, root string) string {
	root = strings.TrimSuffix(root, "/")
	if root == "" || root == "." {
		return name
	}
	return strings.TrimPrefix(name, root+"/")
}
