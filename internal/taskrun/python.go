package taskrun

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/updraft-dev/updraft/internal/alerts"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/engine"
	"github.com/updraft-dev/updraft/internal/render"
	"github.com/updraft-dev/updraft/scheduler"
)

// EnvPython picks the interpreter of python tasks (default python3 from PATH), e.g. a venv's.
const EnvPython = "UPDRAFT_PYTHON"

//go:embed python/runner.py python/updraft/__init__.py
var pythonFiles embed.FS

var (
	pythonArgs     = []string{"callable", "file", "function", "kwargs", "env"}
	callablePatten = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$`)
)

// Python is the `python` type (PythonOperator): it calls a function of the DAG's bundle,
// `callable: pipelines.orders:load` (a module path from the bundle root) or `file:
// scripts/x.py` with `function: main`, with `kwargs` rendered and decoded, and `context` (a
// dict with Airflow's names) when the function takes it. Its return value is the XCom.
func Python() Type {
	return Type{Name: "python", Run: runPython, Check: checkPython}
}

func checkPython(with map[string]any) []dag.ArgProblem {
	ps := UnknownArgs(with, pythonArgs)
	c, hasC := with["callable"].(string)
	f, hasF := with["file"].(string)
	switch {
	case hasC && hasF:
		ps = append(ps, dag.ArgProblem{Arg: "callable", Msg: "give callable or file, not both"})
	case hasC:
		if !callablePatten.MatchString(c) {
			ps = append(ps, dag.ArgProblem{Arg: "callable", Msg: fmt.Sprintf("callable %q is not module.path:function", c), Hint: "callable: pipelines.orders:load"})
		}
		if _, ok := with["function"]; ok {
			ps = append(ps, dag.ArgProblem{Arg: "function", Msg: "function goes with file; callable names its function after the colon"})
		}
	case hasF:
		if fn, ok := with["function"].(string); !ok || fn == "" {
			ps = append(ps, dag.ArgProblem{Arg: "function", Msg: "file needs function: the name of the function to call", Hint: "function: main"})
		}
		if !strings.HasSuffix(f, ".py") {
			ps = append(ps, dag.ArgProblem{Arg: "file", Msg: fmt.Sprintf("file %q is not a .py file", f)})
		}
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			ps = append(ps, dag.ArgProblem{Arg: "file", Msg: fmt.Sprintf("file %q must be a path inside the bundle (relative, no ..)", f)})
		}
	default:
		ps = append(ps, dag.ArgProblem{Arg: "callable", Msg: "a python task needs with.callable (module:function) or with.file and with.function",
			Hint: "callable: pipelines.orders:load"})
	}
	if v, ok := with["kwargs"]; ok {
		if _, ok := v.(map[string]any); !ok {
			ps = append(ps, dag.ArgProblem{Arg: "kwargs", Msg: "kwargs must be a mapping of argument names to values", Hint: "kwargs: {table: orders}"})
		}
	}
	return ps
}

// pythonSpec is what the runner reads.
type pythonSpec struct {
	Root     string         `json:"root"`
	Callable string         `json:"callable,omitempty"`
	File     string         `json:"file,omitempty"`
	Function string         `json:"function,omitempty"`
	Kwargs   map[string]any `json:"kwargs"`
	Context  map[string]any `json:"context"`
	Result   string         `json:"result"`
}

// pythonResult is what the runner writes.
type pythonResult struct {
	XCom  json.RawMessage `json:"xcom"`
	Skip  *string         `json:"skip"`
	Error *struct {
		Type      string `json:"type"`
		Message   string `json:"message"`
		Traceback string `json:"traceback"`
	} `json:"error"`
}

// runPython writes the runner and its spec to a scratch folder and runs the runner as a shell
// task would run a command (same process group handling, env and log), then reads the
// outcome from the result file.
func runPython(ctx context.Context, tc *Context) engine.Result {
	if tc.Bundle == "" {
		return Final("python: this DAG was deployed without its folder (no bundle): deploy the folder with `updraft dags deploy DIR`, or run it with `updraft test`")
	}
	py := tc.Getenv(EnvPython)
	if py == "" {
		py = "python3"
	}
	if _, err := exec.LookPath(py); err != nil {
		return Final(fmt.Sprintf("python: interpreter %q not found (set %s to one, e.g. a venv's bin/python, or add Python to the worker image)", py, EnvPython))
	}
	scratch, err := os.MkdirTemp("", "updraft-python-")
	if err != nil {
		return Failed(nil, "python: "+err.Error())
	}
	defer os.RemoveAll(scratch)
	for _, name := range []string{"python/runner.py", "python/updraft/__init__.py"} {
		b, _ := pythonFiles.ReadFile(name)
		dst := filepath.Join(scratch, filepath.FromSlash(strings.TrimPrefix(name, "python/")))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return Failed(nil, "python: "+err.Error())
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			return Failed(nil, "python: "+err.Error())
		}
	}
	spec := pythonSpec{Root: tc.Bundle, Kwargs: pythonKwargs(tc), Context: pythonContext(tc), Result: filepath.Join(scratch, "result.json")}
	spec.Callable, _ = tc.Args["callable"].(string)
	spec.File, _ = tc.Args["file"].(string)
	if spec.File != "" && !filepath.IsLocal(filepath.FromSlash(spec.File)) {
		return Final(fmt.Sprintf("python: file %q must be a path inside the bundle (relative, no ..)", spec.File))
	}
	spec.Function, _ = tc.Args["function"].(string)
	b, err := json.Marshal(spec)
	if err != nil {
		return Final("python: kwargs are not JSON: " + err.Error())
	}
	specFile := filepath.Join(scratch, "spec.json")
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return Failed(nil, "python: "+err.Error())
	}
	env := map[string]any{}
	if m, ok := tc.Args["env"].(map[string]any); ok {
		for k, v := range m {
			env[k] = v
		}
	}
	env["UPDRAFT_PY_BIN"], env["UPDRAFT_PY_RUNNER"], env["UPDRAFT_PY_SPEC"] = py, filepath.Join(scratch, "runner.py"), specFile
	env["PYTHONPATH"] = scratch
	env["PYTHONDONTWRITEBYTECODE"] = "1" // the bundle (a cache, or the user's folder) stays clean
	sh := *tc
	sh.Args = map[string]any{"command": `exec "$UPDRAFT_PY_BIN" -u "$UPDRAFT_PY_RUNNER" "$UPDRAFT_PY_SPEC"`, "env": env}
	res := runShell(ctx, &sh)
	res.XCom = nil // the result file, not the last line of stdout, carries the value

	var out pythonResult
	raw, rerr := os.ReadFile(spec.Result)
	if rerr == nil {
		rerr = json.Unmarshal(raw, &out)
	}
	switch {
	case res.State == scheduler.AttemptSkipped:
		return res
	case out.Error != nil:
		msg := fmt.Sprintf("python: %s: %s\nTraceback (most recent call last):\n%s", out.Error.Type, out.Error.Message, strings.TrimRight(out.Error.Traceback, "\n"))
		return engine.Result{State: scheduler.AttemptFailed, ExitCode: res.ExitCode, Error: msg}
	case res.State == scheduler.AttemptSuccess && rerr != nil:
		return Failed(res.ExitCode, "python: the runner left no result: "+rerr.Error())
	case res.State == scheduler.AttemptSuccess:
		if string(out.XCom) != "null" {
			res.XCom = out.XCom
		}
		return res
	}
	res.Error = strings.Replace(res.Error, "shell: ", "python: ", 1)
	return res
}

// pythonKwargs are the rendered kwargs; a value that was one template arrives as the JSON
// it rendered to (bundleWith made it toJSON), so a list stays a list.
func pythonKwargs(tc *Context) map[string]any {
	out := map[string]any{}
	raw, _ := tc.Task.With["kwargs"].(map[string]any)
	kw, _ := tc.Args["kwargs"].(map[string]any)
	for k, v := range kw {
		if s, ok := v.(string); ok {
			if r, ok := raw[k].(string); ok {
				if _, one := oneAction(r); one {
					var dec any
					if json.Unmarshal([]byte(s), &dec) == nil {
						v = dec
					}
				}
			}
		}
		out[k] = v
	}
	return out
}

// pythonContext is the `context` argument: the template context under Airflow's names.
func pythonContext(tc *Context) map[string]any {
	params := map[string]any{}
	for k, v := range tc.DAG.Params {
		params[k] = v
	}
	var conf map[string]any
	_ = json.Unmarshal([]byte(tc.Run.Conf), &conf)
	for k, v := range conf {
		params[k] = v
	}
	r := render.Run{
		DagID: tc.DAG.ID, RunID: tc.Run.RunID, RunType: string(tc.Run.RunType), TaskID: tc.Ref.TaskID, Owner: tc.DAG.Owner,
		TryNumber: tc.Ref.TryNumber, MaxTries: tc.MaxTries, Loc: tc.DAG.Location(), LogicalDate: tc.Run.LogicalDate,
		IntervalStart: tc.Run.IntervalStart, IntervalEnd: tc.Run.IntervalEnd, Params: params, Conf: conf,
	}
	if tc.Getenv != nil {
		if ui := tc.Getenv(alerts.EnvUIURL); ui != "" {
			r.LogURL = alerts.LogURL(ui, tc.DAG.ID, tc.Run.RunID, tc.Ref.TaskID, tc.Ref.TryNumber)
		}
	}
	data := render.Data(r)
	b, _ := json.Marshal(data)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if ti, ok := out["ti"].(map[string]any); ok {
		ti["dag_id"], ti["run_id"] = tc.DAG.ID, tc.Run.RunID
	}
	out["dag_id"], out["task_id"] = tc.DAG.ID, tc.Ref.TaskID
	if tc.DAG.Bundle != nil {
		out["bundle"] = map[string]any{"root": tc.Bundle, "hash": tc.DAG.Bundle.Short()}
	}
	return out
}
