package taskrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/tasks"
)

// bundles is a worker's bundle cache, made from its environment on first use: the bucket
// (UPDRAFT_BUNDLE_BUCKET, on the stand-in when STORAGE_EMULATOR_HOST is set) and the cache
// folder (UPDRAFT_BUNDLE_CACHE).
type bundles struct {
	once  sync.Once
	cache *bundle.Cache
	err   error
}

func (b *bundles) get(getenv func(string) string) (*bundle.Cache, error) {
	b.once.Do(func() { b.cache, b.err = gcsbundles.NewCache(context.Background(), getenv) })
	return b.cache, b.err
}

// bundleKey carries an attempt's bundle root in its context, for the template functions.
type bundleKey struct{}

// fetchBundle makes the attempt's bundle available (fetched and unpacked once per hash on
// this machine) and returns ctx carrying its root; a DAG deployed without a bundle has none.
func (w *Worker) fetchBundle(ctx context.Context, claim *engine.Claim, logger *tasks.Logger) (context.Context, string, error) {
	ref := claim.DAG.Bundle
	if ref == nil || !needsBundle(claim.Task) {
		return ctx, "", nil
	}
	getenv := w.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cache, err := w.bundles.get(getenv)
	if err != nil {
		return ctx, "", fmt.Errorf("bundle %s: %w", ref.Short(), err)
	}
	start := time.Now()
	root, err := cache.Root(ctx, *ref)
	if err != nil {
		return ctx, "", err
	}
	logger.Info(fmt.Sprintf("bundle %s at %s (%s)", ref.Short(), root, time.Since(start).Round(time.Millisecond)))
	return context.WithValue(ctx, bundleKey{}, root), root, nil
}

// needsBundle reports whether a task reads its bundle: processes run in it (shell, python,
// go), and any type with an sql_file or an include. The others (an http call in Dispatch)
// start without fetching it.
func needsBundle(t *dag.Task) bool {
	switch t.Type {
	case "shell", "python", "go":
		return true
	}
	if _, ok := t.With["sql_file"]; ok {
		return true
	}
	b, _ := json.Marshal([]any{t.With, t.ForEach})
	return strings.Contains(string(b), "include") // over-inclusive is only a fetch
}

// bundleFailure is the result of a bundle that could not be had: a tampered one is final.
func bundleFailure(err error) engine.Result {
	if errors.Is(err, bundle.ErrTampered) {
		return Final(err.Error())
	}
	return Failed(nil, err.Error())
}

// bundleFile reads a file of the attempt's bundle by its slash path from the bundle root.
func bundleFile(root, rel, what string) (string, error) {
	if root == "" {
		return "", fmt.Errorf("%s %q: this DAG was deployed without its folder (no bundle): deploy the folder with `updraft dags deploy DIR`", what, rel)
	}
	name := filepath.FromSlash(rel)
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("%s %q: the path must stay inside the bundle (relative, no ..)", what, rel)
	}
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return "", fmt.Errorf("%s %q: not in the bundle: %v", what, rel, err)
	}
	return string(b), nil
}

// addBundleFuncs defines include over the attempt's bundle.
func addBundleFuncs(ctx context.Context, funcs template.FuncMap) {
	root, _ := ctx.Value(bundleKey{}).(string)
	funcs["include"] = func(rel string) (string, error) { return bundleFile(root, rel, "include") }
}

// bundleWith returns the task's `with` as it is rendered: bigquery.query's sql_file read into
// sql (then rendered as a template like inline SQL), and a python task's kwargs that are one
// template each made to yield JSON, so they reach the function as values.
func bundleWith(ctx context.Context, t *dag.Task) (map[string]any, error) {
	with := t.With
	if f, ok := with["sql_file"].(string); ok && t.Type == "bigquery.query" {
		root, _ := ctx.Value(bundleKey{}).(string)
		sql, err := bundleFile(root, f, "sql_file")
		if err != nil {
			return nil, err
		}
		with = copyMap(with)
		delete(with, "sql_file")
		with["sql"] = sql
	}
	if kw, ok := with["kwargs"].(map[string]any); ok && t.Type == "python" {
		out := make(map[string]any, len(kw))
		for k, v := range kw {
			if s, ok := v.(string); ok {
				if inner, ok := oneAction(s); ok {
					v = "{{ toJSON (" + inner + ") }}"
				}
			}
			out[k] = v
		}
		with = copyMap(with)
		with["kwargs"] = out
	}
	return with, nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// oneAction returns X for a template that is exactly "{{ X }}" and not a control action.
func oneAction(tmpl string) (string, bool) {
	t := strings.TrimSpace(tmpl)
	if !strings.HasPrefix(t, "{{") || !strings.HasSuffix(t, "}}") || strings.Count(t, "{{") != 1 || strings.Count(t, "}}") != 1 {
		return "", false
	}
	inner := strings.TrimSpace(strings.Trim(t[2:len(t)-2], "-"))
	for _, kw := range []string{"if ", "range ", "with ", "define ", "block ", "template ", "end", "else", "/*"} {
		if inner == "" || strings.HasPrefix(inner, kw) {
			return "", false
		}
	}
	return inner, true
}

// sqlFileCheck wraps bigquery.query's argument check: sql_file stands for sql (its file is
// checked by CheckBundleFiles, where the bundle is known).
func SQLFileCheck(check func(map[string]any) []dag.ArgProblem) func(map[string]any) []dag.ArgProblem {
	return func(with map[string]any) []dag.ArgProblem {
		f, has := with["sql_file"]
		if !has {
			return check(with)
		}
		if _, both := with["sql"]; both {
			return []dag.ArgProblem{{Arg: "sql_file", Msg: "give sql or sql_file, not both"}}
		}
		if s, ok := f.(string); !ok || strings.TrimSpace(s) == "" {
			return []dag.ArgProblem{{Arg: "sql_file", Msg: "sql_file must be a path in the bundle", Hint: "sql_file: sql/orders_merge.sql"}}
		}
		with = copyMap(with)
		delete(with, "sql_file")
		with["sql"] = "SELECT 1 -- from sql_file"
		return check(with)
	}
}

// workDir is where a shell or python task runs: with.cwd when given (relative to the DAG
// file's folder in the bundle), else that folder itself, so `./scripts/load.sh` works as in
// the repository. It says clearly when the folder is missing.
func workDir(tc *Context, cwd string) (string, error) {
	dir := cwd
	if tc.Bundle != "" && tc.DAG.Bundle != nil && !filepath.IsAbs(cwd) {
		dir = filepath.Join(tc.Bundle, filepath.FromSlash(path.Dir(tc.DAG.Bundle.File)), cwd)
	}
	if dir == "" {
		return "", nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("working directory %s does not exist (with.cwd %q)", dir, cwd)
	}
	return dir, nil
}

// bundleEnv tells a task where its bundle is.
func bundleEnv(tc *Context) []string {
	if tc.Bundle == "" || tc.DAG.Bundle == nil {
		return nil
	}
	return []string{bundle.EnvRoot + "=" + tc.Bundle, bundle.EnvHash + "=" + tc.DAG.Bundle.Short()}
}
