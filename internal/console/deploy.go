package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/internal/tasktypes"
	"github.com/updraft-dev/updraft/scheduler"
	"github.com/updraft-dev/updraft/scheduler/schedule"
)

// ActionDeploy is the audit log's name for a DAG deploy.
const ActionDeploy = "dags.deploy"

// Bounds of one deploy.
const (
	MaxDeployFiles     = 500
	MaxDeployFileBytes = 1 << 20
	maxFileNameBytes   = 1024
	deployConcurrency  = 8
)

// Bounds of the import errors kept in Firestore (one document, at most 1 MiB): the deploy's
// report has them all.
const (
	maxStoredProblemsPerFile = 20
	maxStoredProblems        = 1000
	maxStoredMessage         = 300
	maxStoredHint            = 200
)

// OutcomeFailed is the outcome of a file not deployed (the others are engine.DeployOutcome's).
const OutcomeFailed = "failed"

// DefaultDAGOptions are the DAG parser's options the CLI uses: the scheduler's cron parser
// and the built-in task types' argument checks.
func DefaultDAGOptions() dag.Options {
	return dag.Options{
		ValidateCron: func(expr string) error { _, err := schedule.ParseCron(expr); return err },
		CheckArgs:    tasktypes.Builtins().CheckArgs,
	}
}

// DAGFile is one DAG file to deploy: its name (a path such as etl/orders.yaml, shown as the
// DAG's file) and its YAML.
type DAGFile struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

// DeployRequest asks to deploy DAG files. With Prune, the deployed DAGs whose files are not
// among Files are deactivated, but only when every file loaded. With DryRun, every file is
// checked and the report says what would happen; nothing is written.
type DeployRequest struct {
	Files  []DAGFile
	Prune  bool
	DryRun bool
	// Bundle, when set, pins every file's DAG to a bundle already stored in the bucket.
	Bundle *BundleUpload
}

// BundleUpload names the stored bundle a deploy's files come from: its hash, and the path
// prefix of the files' names that is the bundle root ("" when names start at the root).
type BundleUpload struct {
	Hash string `json:"hash"`
	Root string `json:"root"`
}

// FileReport is what deploying one file did (or, on a dry run, would do).
type FileReport struct {
	File string `json:"file"`
	// DagID is the DAG the file defines, when it got that far.
	DagID string `json:"dag_id,omitempty"`
	// Outcome is created, updated, unchanged or failed.
	Outcome string `json:"outcome"`
	// Problems say why a file failed, with file:line where there is one.
	Problems []ImportError `json:"problems,omitempty"`
}

// DeployReport is what a deploy did, file by file, in the order the files were sent.
type DeployReport struct {
	DryRun    bool         `json:"dry_run"`
	Files     []FileReport `json:"files"`
	Created   int          `json:"created"`
	Updated   int          `json:"updated"`
	Unchanged int          `json:"unchanged"`
	// Failed counts the files not deployed: they did not load, or their DAG could not be
	// stored. A deploy with failures still deploys the other files.
	Failed int `json:"failed"`
	// Pruned are the DAGs deactivated because their files are gone (or that would be).
	Pruned []string `json:"pruned"`
	// Summary says it in a sentence.
	Summary string `json:"summary"`
	// Warnings are things to know, e.g. why nothing was pruned.
	Warnings []string `json:"warnings,omitempty"`
}

// String formats an import error as "file:line: field: message (hint: ...)", as `updraft
// dags validate` prints a problem.
func (ie ImportError) String() string {
	return dag.Problem{File: ie.File, Line: ie.Line, Field: ie.Field, Msg: ie.Message, Hint: ie.Hint}.Error()
}

// checkDeploy checks a deploy's bounds and names: bad_request saying which file and how.
func checkDeploy(req DeployRequest) error {
	if len(req.Files) == 0 {
		return Errorf(CodeBadRequest, "files is empty: send at least one DAG file as {\"name\": \"etl.yaml\", \"source\": \"...\"}")
	}
	if len(req.Files) > MaxDeployFiles {
		return Errorf(CodeBadRequest, "%d files sent; a deploy takes at most %d: split the folder (and prune only with all of it)", len(req.Files), MaxDeployFiles)
	}
	names := map[string]int{}
	for i, f := range req.Files {
		switch {
		case strings.TrimSpace(f.Name) == "":
			return Errorf(CodeBadRequest, "files[%d] has no name: name each file by its path, e.g. etl/orders.yaml", i)
		case len(f.Name) > maxFileNameBytes || !utf8.ValidString(f.Name) || strings.IndexFunc(f.Name, unicode.IsControl) >= 0:
			return Errorf(CodeBadRequest, "files[%d].name is not a file path (at most %d bytes of printable UTF-8)", i, maxFileNameBytes)
		case len(f.Source) > MaxDeployFileBytes:
			return Errorf(CodeBadRequest, "files[%d] (%s) is %d bytes; a DAG file may be at most %d (1 MiB)", i, f.Name, len(f.Source), MaxDeployFileBytes)
		}
		if j, dup := names[f.Name]; dup {
			return Errorf(CodeBadRequest, "files[%d].name %q was already sent as files[%d]: send each file once", i, f.Name, j)
		}
		names[f.Name] = i
	}
	return nil
}

// Deploy deploys DAG files (admin: a DAG's tasks run code on the workers). Each file is parsed
// with the options the CLI uses; a DAG id defined by an earlier file is a problem of the later
// one, as dag.LoadFiles has it. The valid files are deployed even when others fail; pruning
// happens only when none failed (a failed file's DAG would look gone). The import errors of a
// deploy that writes (not a dry run) replace the stored ones the DAG list shows (see
// StoredImportErrors), so they are cleared when every file loads.
//
// Files that fail are in the report (Failed > 0), not an error: the error is for a refused
// or malformed request. The deploy is audited as one entry whose detail gives the counts.
func (c *Console) Deploy(ctx context.Context, who Caller, req DeployRequest) (*DeployReport, error) {
	out := &DeployReport{DryRun: req.DryRun, Files: []FileReport{}, Pruned: []string{}}
	t := access.Target{Subject: fmt.Sprintf("%d file(s)", len(req.Files))}
	if err := c.authorize(ctx, who, scheduler.DAGRecord{}, access.Admin, ActionDeploy, t); err != nil {
		return nil, err
	}
	err := c.finish(ctx, who, ActionDeploy, t, req.DryRun, func() (string, error) {
		if err := checkDeploy(req); err != nil {
			return "", err
		}
		return c.deploy(ctx, who, req, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type parsedFile struct {
	report int // index in DeployReport.Files
	d      *dag.DAG
	source []byte
}

func (c *Console) deploy(ctx context.Context, who Caller, req DeployRequest, out *DeployReport) (string, error) {
	var valid []parsedFile
	defined := map[string]string{} // DAG id → the file that defined it
	opts, err := c.bundleOptions(ctx, req.Bundle)
	if err != nil {
		return "", err
	}
	for _, f := range req.Files {
		fr := FileReport{File: f.Name}
		d, err := dag.Parse(f.Name, []byte(f.Source), opts(f.Name))
		if err == nil {
			err = pinUpload(d, req.Bundle, f.Name)
		}
		switch {
		case err != nil:
			fr.Problems = problemsOf(f.Name, err)
		case defined[d.ID] != "":
			fr.DagID = d.ID
			fr.Problems = []ImportError{{
				File: f.Name, Line: idLine([]byte(f.Source)), Field: "id",
				Message: fmt.Sprintf("DAG id %q is already defined in %s", d.ID, defined[d.ID]),
				Hint:    "DAG ids must be unique across files; rename this DAG or remove one of the files",
			}}
		default:
			defined[d.ID] = f.Name
			fr.DagID = d.ID
			valid = append(valid, parsedFile{report: len(out.Files), d: d, source: []byte(f.Source)})
		}
		if fr.Problems != nil {
			fr.Outcome = OutcomeFailed
		}
		out.Files = append(out.Files, fr)
	}
	// A few at a time: each deploy is a few round trips, and a folder of hundreds of files
	// must fit in one request's time. Each goroutine writes only its own file's report.
	var wg sync.WaitGroup
	sem := make(chan struct{}, deployConcurrency)
	for _, p := range valid {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fr := &out.Files[p.report]
			outcome, err := c.deployOne(ctx, p, req.DryRun)
			if err != nil {
				fr.Outcome = OutcomeFailed
				fr.Problems = []ImportError{{File: fr.File, Message: "not deployed: " + AsError(err).Message,
					Hint: "deploy again; the other files are not affected"}}
				return
			}
			fr.Outcome = string(outcome)
		}()
	}
	wg.Wait()
	keep := map[string]bool{}
	for _, p := range valid {
		if out.Files[p.report].Outcome != OutcomeFailed {
			keep[p.d.ID] = true
		}
	}
	for _, fr := range out.Files {
		switch fr.Outcome {
		case string(engine.Created):
			out.Created++
		case string(engine.Updated):
			out.Updated++
		case string(engine.Unchanged):
			out.Unchanged++
		default:
			out.Failed++
		}
	}
	if !req.DryRun {
		if err := c.store.SetImportErrors(ctx, storedImportErrors(out.Files, who.Email, c.now())); err != nil {
			out.Warnings = append(out.Warnings, "the DAG list may show the previous deploy's import errors: "+err.Error())
		}
	}
	if req.Prune {
		if out.Failed > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("not pruning: %d file(s) failed, and their DAGs would look gone", out.Failed))
		} else if err := c.prune(ctx, keep, req.DryRun, out); err != nil {
			return "", fmt.Errorf("%s, but pruning failed (deploy again to prune): %w", counts(out), err)
		}
	}
	verb := ""
	if req.DryRun {
		verb = "would deploy "
	}
	out.Summary = verb + counts(out)
	detail := out.Summary
	if out.Failed > 0 {
		var failed []string
		for _, fr := range out.Files {
			if fr.Outcome == OutcomeFailed {
				failed = append(failed, fr.File)
			}
		}
		detail += "; failed: " + shortList(failed, 10)
	}
	if len(out.Pruned) > 0 {
		detail += "; pruned: " + shortList(out.Pruned, 10)
	}
	return detail, nil
}

// deployOne deploys a parsed file, or on a dry run says what deploying it would do.
func (c *Console) deployOne(ctx context.Context, p parsedFile, dryRun bool) (engine.DeployOutcome, error) {
	if !dryRun {
		return c.eng.Deploy(ctx, p.d, p.source)
	}
	cur, err := c.store.GetDAG(ctx, p.d.ID)
	switch {
	case errors.Is(err, fsstore.ErrNotFound):
		return engine.Created, nil
	case err != nil:
		return "", err
	case cur.Rec.Version == p.d.Source.Hash && cur.Rec.Active:
		return engine.Unchanged, nil
	}
	return engine.Updated, nil
}

// prune deactivates the active DAGs not in keep, or on a dry run lists them.
func (c *Console) prune(ctx context.Context, keep map[string]bool, dryRun bool, out *DeployReport) error {
	if !dryRun {
		pruned, err := c.eng.Prune(ctx, keep)
		out.Pruned = append(out.Pruned, pruned...)
		return err
	}
	all, err := c.store.ListDAGs(ctx)
	if err != nil {
		return err
	}
	for _, v := range all {
		if v.Rec.Active && !keep[v.Rec.DagID] {
			out.Pruned = append(out.Pruned, v.Rec.DagID)
		}
	}
	return nil
}

func counts(r *DeployReport) string {
	s := fmt.Sprintf("%d file(s): %d created, %d updated, %d unchanged, %d failed",
		len(r.Files), r.Created, r.Updated, r.Unchanged, r.Failed)
	if len(r.Pruned) > 0 {
		s += fmt.Sprintf(", %d pruned", len(r.Pruned))
	}
	return s
}

func shortList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}

// problemsOf turns dag.Parse's error into import errors.
func problemsOf(file string, err error) []ImportError {
	var ps dag.Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		return []ImportError{{File: file, Message: err.Error()}}
	}
	out := make([]ImportError, 0, len(ps))
	for _, p := range ps {
		out = append(out, importError(p))
	}
	return out
}

// idLine is the line of a DAG file's top-level id (0 when it cannot be found).
func idLine(src []byte) int {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "id" {
			return m.Content[i].Line
		}
	}
	return 0
}

// storedImportErrors is what a deploy keeps of its failed files' problems: bounded so the
// document stays well under Firestore's 1 MiB (the report has them all).
func storedImportErrors(files []FileReport, by string, now time.Time) *fsstore.ImportErrors {
	out := &fsstore.ImportErrors{Problems: []fsstore.ImportProblem{}, DeployedBy: by, DeployedAt: now}
	left := 0
	for _, fr := range files {
		for i, p := range fr.Problems {
			if i >= maxStoredProblemsPerFile || len(out.Problems) >= maxStoredProblems {
				left += len(fr.Problems) - i
				break
			}
			out.Problems = append(out.Problems, fsstore.ImportProblem{File: p.File, Line: p.Line, Field: p.Field,
				Message: truncate(p.Message, maxStoredMessage), Hint: truncate(p.Hint, maxStoredHint)})
		}
	}
	if left > 0 {
		out.Problems = append(out.Problems, fsstore.ImportProblem{
			Message: fmt.Sprintf("%d more problem(s) not shown", left),
			Hint:    "run `updraft dags validate` on the DAG folder to see them all",
		})
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// StoredImportErrors returns an ImportErrors function (Config.ImportErrors) that reads the
// import errors the last deploy stored, for a deployment whose DAGs arrive through Deploy.
func StoredImportErrors(st *fsstore.Store) func(ctx context.Context) ([]ImportError, error) {
	return func(ctx context.Context) ([]ImportError, error) {
		ie, err := st.GetImportErrors(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]ImportError, 0, len(ie.Problems))
		for _, p := range ie.Problems {
			out = append(out, ImportError{File: p.File, Line: p.Line, Field: p.Field, Message: p.Message, Hint: p.Hint})
		}
		return out, nil
	}
}
