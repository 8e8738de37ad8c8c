package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/updraft-dev/updraft/internal/access"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/console"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
)

// The operations commands (trigger, runs, tasks, backfill, logs, vars, users, dags
// list/deploy/pause/unpause) are written once, against console.Operations. Without --api they
// run the console in this process, acting as the local identity; with --api they go through
// the REST API, acting as the person the ID token names. Either way the console authorises
// the call and records the action in the audit log.

// opener connects to the operations at the command's first call, so that a mistake in the
// command line is reported without a backend.
type opener func(ctx context.Context) (console.Operations, error)

// opsCommand is a command written against the operations.
type opsCommand func(ctx context.Context, a *App, open opener, args []string) error

// connection is the operations of one command: local, or the API at apiURL.
type connection struct {
	a       *App
	apiURL  string
	ops     console.Operations
	closeFn func()
}

func (c *connection) open(ctx context.Context) (console.Operations, error) {
	if c.ops != nil {
		return c.ops, nil
	}
	if c.apiURL != "" {
		cl, err := c.a.newAPIClient(c.apiURL)
		if err != nil {
			return nil, err
		}
		c.ops = cl
		return cl, nil
	}
	o, closeFn, err := c.a.openLocalOps(ctx)
	if err != nil {
		return nil, err
	}
	c.ops, c.closeFn = o, closeFn
	return o, nil
}

func (c *connection) close() {
	if c.closeFn != nil {
		c.closeFn()
	}
}

// localCaller is who local commands act as: UPDRAFT_USER when set (your email, e.g. against
// a project's Firestore), else the dev identity (UPDRAFT_DEV_USER, default dev@localhost),
// which `updraft dev` grants admin and its UI acts as.
func (a *App) localCaller() console.Caller {
	who := strings.TrimSpace(a.Getenv("UPDRAFT_USER"))
	if who == "" {
		who = devEmail(a)
	}
	return console.Caller{Email: who, From: "cli"}
}

// openLocalOps runs the console in this process over the backend's Firestore and Pub/Sub.
// It may grant the first admin (console.Config.FirstAdmin): whoever runs it holds the
// project's credentials, which is how a deployment's first admin is made.
func (a *App) openLocalOps(ctx context.Context) (console.Operations, func(), error) {
	eng, closeFn, _, err := a.openEngine(ctx)
	if err != nil {
		return nil, nil, err
	}
	st := eng.Store()
	imports := console.StoredImportErrors(st)
	if ds := a.readDevState(); ds != nil && ds.DagDir != "" && a.Getenv("GOOGLE_CLOUD_PROJECT") == "" {
		imports = console.DirImportErrors(ds.DagDir, parseOptions()) // what dev deploys: its folder now
	}
	cfg := console.Config{Engine: eng, Store: st, Access: access.New(st, a.Now), Logs: console.FileLogs{}, Now: a.Now,
		ImportErrors: imports, DAGOptions: parseOptions(), FirstAdmin: true}
	if a.Getenv(bundle.EnvBucket) != "" {
		cache, err := gcsbundles.NewCache(ctx, a.Getenv)
		if err != nil {
			closeFn()
			return nil, nil, err
		}
		cfg.Bundles = cache
	}
	return console.New(cfg).As(a.localCaller()), closeFn, nil
}

// resolveRun names a run as (DAG, run id): DAG/RUN_ID as given, or a bare RUN_ID looked up
// across DAGs when it is unique.
func resolveRun(ctx context.Context, o console.Operations, ref string) (string, string, error) {
	if dagID, runID, ok := strings.Cut(ref, "/"); ok {
		if dagID == "" || runID == "" {
			return "", "", usagef("name a run as DAG/RUN_ID, or a RUN_ID unique across DAGs (got %q)", ref)
		}
		return dagID, runID, nil
	}
	refs, err := o.FindRuns(ctx, ref)
	if err != nil {
		return "", "", err
	}
	switch len(refs) {
	case 0:
		return "", "", console.Errorf(console.CodeNotFound, "no run %q (name it as DAG/RUN_ID; see `updraft runs list DAG`)", ref)
	case 1:
		return refs[0].DagID, refs[0].RunID, nil
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.DagID+"/"+r.RunID)
	}
	return "", "", fmt.Errorf("run id %q is in several DAGs; name one of: %s", ref, strings.Join(names, ", "))
}

// errorText is how a command's error is printed: a console error with its code, the same in
// both modes (`… holds only viewer; … (forbidden)`).
func errorText(err error) string {
	var ce *console.Error
	if errors.As(err, &ce) && ce.Code != "" && ce.Code != console.CodeInternal {
		return fmt.Sprintf("%s (%s)", err.Error(), ce.Code)
	}
	return err.Error()
}
