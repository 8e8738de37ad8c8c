package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/dag"
)

// apiDagsDeploy is `updraft --api URL dags deploy [--prune] [--dry-run] PATH...`: it reads the
// DAG files as `dags deploy` does (dag.ListFiles), sends them in one request, and prints one
// line per file; it exits 1 when a file was not deployed.
func apiDagsDeploy(ctx context.Context, a *App, c *apiClient, args []string) error {
	fs := flag.NewFlagSet("dags deploy", flag.ContinueOnError)
	prune := fs.Bool("prune", false, "deactivate deployed DAGs whose files are gone (only when every file loads)")
	dryRun := fs.Bool("dry-run", false, "check the files and show what a deploy would do, deploy nothing")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("name at least one DAG file or folder")
	}
	names, err := dag.ListFiles(paths)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no DAG files (*.yaml, *.yml) under %v", paths)
	}
	body := struct {
		Files  []console.DAGFile     `json:"files"`
		Prune  bool                  `json:"prune"`
		Bundle *console.BundleUpload `json:"bundle,omitempty"`
	}{Files: []console.DAGFile{}, Prune: *prune}
	// One folder is a bundle: stored first (with this machine's credentials), then named.
	if st, err := os.Stat(paths[0]); len(paths) == 1 && err == nil && st.IsDir() {
		if a.Getenv(bundle.EnvBucket) == "" {
			if hasCode(paths[0]) {
				fmt.Fprintf(a.Stderr, "note: %s is not set: the DAGs are deployed without their folder (python tasks, sql_file and include need it)\n", bundle.EnvBucket)
			}
		} else {
			hash, err := a.storeBundle(ctx, paths[0])
			if err != nil {
				return err
			}
			body.Bundle = &console.BundleUpload{Hash: hash, Root: filepath.ToSlash(filepath.Clean(paths[0]))}
		}
	}
	unread := 0
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			p := dag.Problem{File: name, Msg: "cannot read the file: " + err.Error(), Hint: "check the file's permissions"}
			fmt.Fprintln(a.Stderr, p.Error())
			unread++
			continue
		}
		body.Files = append(body.Files, console.DAGFile{Name: filepath.ToSlash(name), Source: string(src)})
	}
	if unread > 0 && *prune {
		body.Prune = false
		fmt.Fprintln(a.Stderr, "not pruning: some files could not be read, and their DAGs would look gone")
	}
	if len(body.Files) == 0 {
		return silentError{1}
	}
	var rep console.DeployReport
	if err := c.call(ctx, "POST", "/dags"+dry(*dryRun), body, &rep); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusRequestEntityTooLarge {
			return fmt.Errorf("%w: deploy the folder in parts (without --prune)", err)
		}
		return err
	}
	if rep.DryRun {
		fmt.Fprintln(a.Stdout, "dry run, nothing changed: what a deploy would do")
	}
	for _, f := range rep.Files {
		if f.Outcome == console.OutcomeFailed {
			for _, p := range f.Problems {
				fmt.Fprintln(a.Stderr, p.String())
			}
			continue
		}
		fmt.Fprintf(a.Stdout, "%-9s %s (%s)\n", f.Outcome, f.DagID, f.File)
	}
	for _, id := range rep.Pruned {
		fmt.Fprintf(a.Stdout, "pruned    %s (file gone; history kept)\n", id)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(a.Stderr, "note: %s\n", w)
	}
	if failed := rep.Failed + unread; failed > 0 {
		fmt.Fprintf(a.Stderr, "%d file(s) not deployed: fix the problems above\n", failed)
		return silentError{1}
	}
	return nil
}
