package dag

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoadResult is the outcome of loading many DAG files: the DAGs that are valid and the import
// errors of the others. One bad file never stops the others from loading.
type LoadResult struct {
	// DAGs are the valid DAGs, in the order their files were loaded.
	DAGs []*DAG
	// Errors holds the problems of each file that did not load, by file path. It is never nil.
	Errors map[string]Problems
}

// Problems returns the problems of all files, sorted by file and line.
func (r *LoadResult) Problems() Problems {
	var all Problems
	for _, ps := range r.Errors {
		all = append(all, ps...)
	}
	return sortProblems(all)
}

// LoadDir loads every DAG file under dir; see LoadFiles.
func LoadDir(dir string, opts Options) (*LoadResult, error) {
	return LoadFiles([]string{dir}, opts)
}

// LoadFiles loads and validates DAG files. A path that is a directory stands for every *.yaml
// and *.yml file below it, recursively, in lexical order, skipping names that start with ".";
// a path that is a file is loaded whatever its extension. A DAG whose id another file already
// defined is an import error of the later file. LoadFiles returns an error only when a path
// cannot be read at all (it does not exist, or a directory cannot be listed); problems in the
// files are in the result.
func LoadFiles(paths []string, opts Options) (*LoadResult, error) {
	files, err := listFiles(paths, "load")
	if err != nil {
		return nil, err
	}
	res := &LoadResult{Errors: map[string]Problems{}}
	defined := map[string]string{} // DAG id → file
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			res.Errors[f] = Problems{{File: f, Msg: "cannot read the file: " + err.Error(), Hint: "check the file's permissions"}}
			continue
		}
		d, idLine, probs := parse(f, data, opts)
		if len(probs) > 0 {
			res.Errors[f] = probs
			continue
		}
		if other, dup := defined[d.ID]; dup {
			res.Errors[f] = Problems{{
				File: f, Line: idLine, Field: "id",
				Msg:  fmt.Sprintf("DAG id %q is already defined in %s", d.ID, other),
				Hint: "DAG ids must be unique across files; rename this DAG or remove one of the files",
			}}
			continue
		}
		defined[d.ID] = f
		res.DAGs = append(res.DAGs, d)
	}
	return res, nil
}

// isDAGFile reports whether a file found in a directory is a DAG file by its extension.
func isDAGFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}
