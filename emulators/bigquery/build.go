package bqemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

const (
	// Version is the bigquery-emulator release this package builds and runs.
	Version = "v0.8.1"
	// Package is the emulator's main package, built from the tools module.
	Package = "github.com/goccy/bigquery-emulator/cmd/bigquery-emulator"

	// CacheEnv names the cache root (default $HOME/.cache/updraft); the
	// binary lives in its bin/ folder.
	CacheEnv = "UPDRAFT_CACHE"
	// BinaryEnv, when set, names an emulator binary to use instead of the
	// cached build.
	BinaryEnv = "UPDRAFT_BIGQUERY_EMULATOR"
)

// buildNote is printed to stderr before a cold build.
const buildNote = "building the BigQuery emulator once (about 4 minutes; up to 10 on 2 CPUs, 6.5 GB of memory)…"

// BinaryPath is where EnsureBuilt keeps the emulator:
// ${UPDRAFT_CACHE:-$HOME/.cache/updraft}/bin/bigquery-emulator-v0.8.1.
func BinaryPath() (string, error) {
	root := os.Getenv(CacheEnv)
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("bqemu: no cache folder: set %s or HOME: %w", CacheEnv, err)
		}
		root = filepath.Join(home, ".cache", "updraft")
	}
	return filepath.Join(root, "bin", "bigquery-emulator-"+Version), nil
}

// EnsureBuilt builds the emulator into the cache if it is missing and returns
// its path. The build runs once per machine: concurrent callers (other test
// binaries) wait on a lock file next to the binary, and the binary appears
// under its final name only when complete. A cold build prints one line to
// stderr first; it takes about 4 minutes and several GB of memory.
func EnsureBuilt(ctx context.Context) (string, error) {
	return EnsureBuiltProgress(ctx, nil)
}

// Progress is told how a build is going: the packages compiled so far out of those the
// emulator needs (total 0 while that is not known yet, done -1 while another process holds
// the build lock).
type Progress func(done, total int)

// Built reports whether the emulator binary is there (cached, or named by BinaryEnv), so
// that a caller can tell a start from a build.
func Built() bool {
	if p := os.Getenv(BinaryEnv); p != "" {
		return executable(p) == nil
	}
	bin, err := BinaryPath()
	return err == nil && executable(bin) == nil
}

// EnsureBuiltProgress is EnsureBuilt telling progress (nil: no one) how a build goes.
func EnsureBuiltProgress(ctx context.Context, progress Progress) (string, error) {
	quiet := progress != nil // the caller shows progress its own way
	if progress == nil {
		progress = func(int, int) {}
	}
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("bqemu: %s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	bin, err := BinaryPath()
	if err != nil {
		return "", err
	}
	if executable(bin) == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("bqemu: %w", err)
	}
	progress(-1, 0)
	unlock, err := lockFile(ctx, bin+".lock")
	if err != nil {
		return "", fmt.Errorf("bqemu: waiting for the build lock: %w", err)
	}
	defer unlock()
	if executable(bin) == nil { // built by another process while we waited
		return bin, nil
	}
	dir, err := ToolsDir()
	if err != nil {
		return "", err
	}
	if !quiet {
		fmt.Fprintln(os.Stderr, buildNote)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	defer os.Remove(tmp)
	gobin, err := goCommand()
	if err != nil {
		return "", err
	}
	// The tools module stands alone: no workspace, its own go.sum.
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	progress(0, 0)
	deps := dependencies(ctx, gobin, dir, env)
	progress(0, len(deps))
	cmd := exec.CommandContext(ctx, gobin, "build", "-v", "-o", tmp, Package)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	// -v names each package as it is compiled, on stderr: count those against deps.
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		done := 0
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if deps[line] {
				done++
				progress(min(done, len(deps)), len(deps))
				continue
			}
			out.WriteString(line + "\n")
		}
	}()
	err = cmd.Run()
	pw.Close()
	<-counted
	if err != nil {
		return "", fmt.Errorf("bqemu: go build %s in %s: %w\n%s", Package, dir, err, tail(out.String(), 40))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("bqemu: %w", err)
	}
	return bin, nil
}

// ToolsDir finds the tools module (emulators/bigquery/tools) in the source
// tree: next to this file when the package was built from source, else under
// the working directory or one of its parents.
func ToolsDir() (string, error) {
	var tried []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "tools")
		if isFile(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		tried = append(tried, d)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			t := filepath.Join(d, "emulators", "bigquery", "tools")
			if isFile(filepath.Join(t, "go.mod")) {
				return t, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		tried = append(tried, wd+" and its parents")
	}
	return "", fmt.Errorf("bqemu: the tools module (emulators/bigquery/tools/go.mod) is not in %s; run from the Updraft source tree or set %s to a built emulator",
		strings.Join(tried, " or "), BinaryEnv)
}

// goCommand is the go command that builds the emulator: the one on PATH,
// else the one of the toolchain that built this program.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if isFile(p) {
		return p, nil
	}
	return "", errors.New("bqemu: building the emulator needs the go command on PATH")
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: p, Err: errors.New("not an executable file")}
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dependencies lists the packages the emulator's build compiles (standard library ones
// included: a fresh toolchain cache compiles them too); empty if go list fails, which only
// costs the progress count.
func dependencies(ctx context.Context, gobin, dir string, env []string) map[string]bool {
	cmd := exec.CommandContext(ctx, gobin, "list", "-deps", Package)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	deps := map[string]bool{}
	if err != nil {
		return deps
	}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	return deps
}
