package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/updraft-dev/updraft/internal/dag"
)

// MaxBytes is the largest bundle, counting its files' sizes: a DAG folder is code, not data.
const MaxBytes = 100 << 20

// File is one file of a bundle.
type File struct {
	Path string `json:"path"` // slash-separated, relative to the bundle root
	Size int64  `json:"size"`
	Exec bool   `json:"exec,omitempty"`
}

// Bundle is a built bundle: its archive and what is in it.
type Bundle struct {
	// Hash is the hex SHA-256 of the uncompressed tar stream: the same files give the same
	// hash whatever the compressor does.
	Hash string
	// Archive is the gzipped tar, as stored.
	Archive []byte
	Files   []File
	// Size is the sum of the files' sizes.
	Size int64
}

// Ref pins the bundle a DAG version runs with (see dag.BundleRef).
type Ref = dag.BundleRef

// TooBigError says a folder is over MaxBytes and which files weigh most.
type TooBigError struct {
	Dir     string
	Size    int64
	Biggest []File
}

func (e *TooBigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bundle: %s holds %s of files, over the %s limit; the biggest:", e.Dir, human(e.Size), human(MaxBytes))
	for _, f := range e.Biggest {
		fmt.Fprintf(&b, "\n  %s (%s)", f.Path, human(f.Size))
	}
	fmt.Fprintf(&b, "\nleave data out of the DAG folder, or list such files in %s (gitignore syntax)", IgnoreFile)
	return b.String()
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// List returns the files a bundle of dir holds, sorted by path: every regular file (symlinks
// to files are followed) that neither the default ignores nor dir's .updraftignore leave out.
func List(dir string) ([]File, error) {
	ignoreSrc, err := os.ReadFile(filepath.Join(dir, IgnoreFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	ig := ParseIgnore(DefaultIgnores, ignoreSrc)
	var files []File
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if ig.Match(rel, e.IsDir()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		info, err := os.Stat(p) // follows a symlink
		if err != nil {
			return err
		}
		if info.IsDir() {
			return fmt.Errorf("%s is a symlink to a folder: a bundle holds files only (copy it in, or add it to %s)", rel, IgnoreFile)
		}
		if !info.Mode().IsRegular() {
			return nil // sockets, pipes: nothing to ship
		}
		files = append(files, File{Path: rel, Size: info.Size(), Exec: info.Mode()&0o111 != 0})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundle: list %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Build archives dir deterministically: the files of List in path order, with fixed times,
// owners and modes (0644, or 0755 for executables), so the same files always give the same
// hash. A folder over MaxBytes is a *TooBigError.
func Build(dir string) (*Bundle, error) {
	files, err := List(dir)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	if total > MaxBytes {
		big := append([]File(nil), files...)
		sort.Slice(big, func(i, j int) bool { return big[i].Size > big[j].Size })
		return nil, &TooBigError{Dir: dir, Size: total, Biggest: big[:min(5, len(big))]}
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		files[i].Size = int64(len(b)) // what was read, should it have changed meanwhile
		mode := int64(0o644)
		if f.Exec {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: mode, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &Bundle{Hash: hex.EncodeToString(h.Sum(nil)), Archive: gz.Bytes(), Files: files, Size: total}, nil
}

// ErrTampered says a fetched archive's contents do not hash to the name it was stored under.
var ErrTampered = errors.New("bundle: contents do not match their hash")

// Verify checks that archive holds the bundle named hash, returning its tar stream.
func Verify(hash string, archive []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a gzip archive: %v", ErrTampered, hash, err)
	}
	tarball, err := io.ReadAll(io.LimitReader(zr, 2*MaxBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTampered, hash, err)
	}
	sum := sha256.Sum256(tarball)
	if got := hex.EncodeToString(sum[:]); got != hash {
		return nil, fmt.Errorf("%w: stored as %s, holds %s; refusing to run it (deploy again to store it anew)", ErrTampered, hash, got)
	}
	return tarball, nil
}

// unpack writes a verified tar stream's files under dir, refusing paths that leave it.
func unpack(tarball []byte, dir string) error {
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return fmt.Errorf("bundle: entry %q is not a plain file inside the bundle", h.Name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
