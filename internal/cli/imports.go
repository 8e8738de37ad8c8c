package cli

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/fsstore"
)

// Bounds of the import errors a deploy from the CLI stores: the document stays far under
// Firestore's 1 MiB, and `dags validate` shows everything.
const (
	maxStoredImportFiles = 200
	maxStoredImportChars = 1000
)

// recordImportErrors stores the first problem of each file of a deploy that failed to load
// (none when every file loaded), as the API's deploy does, so that `dags list` and the UI
// show them wherever they run.
func recordImportErrors(ctx context.Context, st *fsstore.Store, errs map[string]dag.Problems, by string, now time.Time) error {
	files := make([]string, 0, len(errs))
	for f := range errs {
		files = append(files, f)
	}
	sort.Strings(files)
	ie := &fsstore.ImportErrors{Problems: []fsstore.ImportProblem{}, DeployedBy: by, DeployedAt: now}
	for i, f := range files {
		if i == maxStoredImportFiles {
			ie.Problems = append(ie.Problems, fsstore.ImportProblem{
				Message: fmt.Sprintf("%d more file(s) failed to load", len(files)-i),
				Hint:    "run `updraft dags validate` on the DAG folder to see them all"})
			break
		}
		ps := errs[f]
		if len(ps) == 0 {
			continue
		}
		p := ps[0]
		msg := p.Msg
		if len(ps) > 1 {
			msg += fmt.Sprintf(" (and %d more: updraft dags validate %s)", len(ps)-1, f)
		}
		ie.Problems = append(ie.Problems, fsstore.ImportProblem{File: f, Line: p.Line, Field: p.Field,
			Message: clip(msg, maxStoredImportChars), Hint: clip(p.Hint, maxStoredImportChars)})
	}
	if err := st.SetImportErrors(ctx, ie); err != nil {
		return fmt.Errorf("record the files that failed to load: %w", err)
	}
	return nil
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// printStoredImportErrors lists the import errors the last deploy recorded (through the
// API or `dags deploy`), for `dags list` away from `updraft dev`.
func (a *App) printStoredImportErrors(ctx context.Context, st *fsstore.Store) {
	ie, err := st.GetImportErrors(ctx)
	if err != nil {
		fmt.Fprintf(a.Stdout, "\nthe import errors could not be read: %v\n", err)
		return
	}
	if len(ie.Problems) == 0 {
		return
	}
	by := ""
	if ie.DeployedBy != "" {
		by = " by " + ie.DeployedBy
	}
	fmt.Fprintf(a.Stdout, "\n%d DAG file(s) failed to load at the last deploy (%s%s):\n", len(ie.Problems),
		ie.DeployedAt.UTC().Format(time.DateTime+" UTC"), by)
	for _, p := range ie.Problems {
		pr := dag.Problem{File: p.File, Line: p.Line, Field: p.Field, Msg: p.Message, Hint: p.Hint}
		fmt.Fprintf(a.Stdout, "  %s\n", pr.Error())
	}
}
