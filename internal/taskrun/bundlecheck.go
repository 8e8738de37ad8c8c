package taskrun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/updraft-dev/updraft/internal/dag"
)

var (
	includeCall = regexp.MustCompile(`include\s+"([^"]+)"`)
	scriptWord  = regexp.MustCompile(`^(\./[^\s;|&<>]+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.(sh|bash|py|sql|R))$`)
)

// definesPy asks Python's own parser whether a module defines a name at its top level: exit
// 0 yes, 3 no, 1 with the syntax error on stderr.
const definesPy = `import ast, sys
t = ast.parse(open(sys.argv[1]).read(), sys.argv[1])
names = set()
for n in t.body:
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(n.name)
    elif isinstance(n, ast.Assign):
        names.update(x.id for x in n.targets if isinstance(x, ast.Name))
    elif isinstance(n, (ast.Import, ast.ImportFrom)):
        names.update((a.asname or a.name).split(".")[0] for a in n.names)
sys.exit(0 if sys.argv[2] in names else 3)
`

// CheckBundleFiles returns dag.Options.CheckFiles for the bundle folder root: the files a
// task names must be in it (a python module or file, and its function when python is an
// interpreter on this machine; an sql_file; an include; a script a shell command runs from
// the DAG's folder). Python parses each module once.
func CheckBundleFiles(root, python string) func(dagFile, typ string, with map[string]any) []dag.ArgProblem {
	if _, err := exec.LookPath(python); err != nil {
		python = "" // function names are not checked without an interpreter
	}
	var mu sync.Mutex
	seen := map[string]string{}
	defines := func(file, fn string) string {
		if python == "" {
			return ""
		}
		key := file + "\x00" + fn
		mu.Lock()
		defer mu.Unlock()
		if msg, ok := seen[key]; ok {
			return msg
		}
		msg := ""
		out, err := exec.Command(python, "-c", definesPy, file, fn).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			msg = fmt.Sprintf("%s defines no function %s", rel(root, file), fn)
		} else if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			msg = fmt.Sprintf("%s does not parse: %s", rel(root, file), lines[len(lines)-1])
		}
		seen[key] = msg
		return msg
	}
	exists := func(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }
	return func(dagFile, typ string, with map[string]any) []dag.ArgProblem {
		var ps []dag.ArgProblem
		missing := func(arg, what, p, hint string) {
			ps = append(ps, dag.ArgProblem{Arg: arg, Msg: fmt.Sprintf("%s %s is not in the bundle %s", what, p, root), Hint: hint})
		}
		switch typ {
		case "python":
			if c, ok := with["callable"].(string); ok && callablePatten.MatchString(c) {
				mod, fn, _ := strings.Cut(c, ":")
				base := filepath.Join(root, filepath.FromSlash(strings.ReplaceAll(mod, ".", "/")))
				file := base + ".py"
				if !exists(file) {
					file = filepath.Join(base, "__init__.py")
				}
				if !exists(file) {
					missing("callable", "module "+mod+":", strings.ReplaceAll(mod, ".", "/")+".py", "module paths start at the bundle root (the folder deployed)")
				} else if msg := defines(file, fn); msg != "" {
					ps = append(ps, dag.ArgProblem{Arg: "callable", Msg: msg})
				}
			}
			if f, ok := with["file"].(string); ok && !strings.Contains(f, "{{") {
				p := filepath.Join(root, filepath.FromSlash(f))
				if !exists(p) {
					missing("file", "file", f, "file paths start at the bundle root (the folder deployed)")
				} else if fn, ok := with["function"].(string); ok && fn != "" {
					if msg := defines(p, fn); msg != "" {
						ps = append(ps, dag.ArgProblem{Arg: "function", Msg: msg})
					}
				}
			}
		case "bigquery.query":
			if f, ok := with["sql_file"].(string); ok && !strings.Contains(f, "{{") && !exists(filepath.Join(root, filepath.FromSlash(f))) {
				missing("sql_file", "sql_file", f, "sql_file paths start at the bundle root (the folder deployed)")
			}
		case "shell":
			if c, ok := with["command"].(string); ok {
				if _, hasCwd := with["cwd"]; !hasCwd {
					dir := filepath.Dir(dagFile)
					for _, w := range strings.Fields(c) {
						w = strings.Trim(w, `"'`)
						if strings.Contains(w, "{{") || strings.Contains(w, "$") || filepath.IsAbs(w) || !scriptWord.MatchString(w) {
							continue
						}
						if !exists(filepath.Join(dir, filepath.FromSlash(w))) {
							missing("command", "script", w, "the command runs in the DAG file's folder; give the path from there")
						}
					}
				}
			}
		}
		for _, inc := range includes(with, "") {
			if !exists(filepath.Join(root, filepath.FromSlash(inc[1]))) {
				missing(inc[0], "include", inc[1], "include paths start at the bundle root (the folder deployed)")
			}
		}
		return ps
	}
}

// includes lists the {{ include "path" }} calls in with's strings as (arg path, file path).
func includes(v any, path string) [][2]string {
	var out [][2]string
	switch x := v.(type) {
	case string:
		if strings.Contains(x, "{{") {
			for _, m := range includeCall.FindAllStringSubmatch(x, -1) {
				out = append(out, [2]string{path, m[1]})
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, includes(x[k], p)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, includes(e, path)...)
		}
	}
	return out
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}
