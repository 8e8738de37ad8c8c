package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/updraft-dev/updraft/internal/dag"
)

// Pin records on d the bundle it runs with: root is the bundle's folder, hash the stored
// bundle's hash ("" to use root in place). A stored bundle's hash is folded into the DAG's
// version, so changing a script without touching the YAML still makes a new version, and a
// run keeps the code of the version it was created with.
func Pin(d *dag.DAG, root, hash string) error {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	absFile, err := filepath.Abs(d.Source.File)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	rel, err := filepath.Rel(absRoot, absFile)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("bundle: DAG file %s is not inside the bundle folder %s", d.Source.File, root)
	}
	if hash != "" {
		PinStored(d, hash, filepath.ToSlash(rel))
		return nil
	}
	d.Bundle = &dag.BundleRef{Dir: absRoot, File: filepath.ToSlash(rel)}
	return nil
}

// PinStored records on d the stored bundle hash, d's file being file (slash path from the
// bundle root), and folds the hash into d's version (see Pin).
func PinStored(d *dag.DAG, hash, file string) {
	sum := sha256.Sum256([]byte(d.Source.Hash + "\x00bundle\x00" + hash))
	d.Source.Hash = hex.EncodeToString(sum[:])
	d.Bundle = &dag.BundleRef{Hash: hash, File: file}
}

// FindRoot is the bundle folder of a lone DAG file (`updraft test FILE`): the nearest folder
// above it holding a .updraftignore, stopping at a repository's root (.git); else the
// file's own folder.
func FindRoot(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return filepath.Dir(file)
	}
	for dir := filepath.Dir(abs); ; {
		if _, err := os.Stat(filepath.Join(dir, IgnoreFile)); err == nil {
			return dir
		}
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	return filepath.Dir(abs)
}
