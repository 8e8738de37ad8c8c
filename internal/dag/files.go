package dag

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ListFiles lists the DAG files that paths stand for, as LoadFiles reads them: a directory
// stands for every *.yaml and *.yml file below it, recursively, in lexical order, skipping
// names that start with "."; a file stands for itself whatever its extension. A file named
// twice is listed once. It returns an error when a path cannot be read at all.
func ListFiles(paths []string) ([]string, error) { return listFiles(paths, "list") }

// listFiles is ListFiles with its errors saying "dag: VERB PATH".
func listFiles(paths []string, verb string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		key := filepath.Clean(f)
		if !seen[key] {
			seen[key] = true
			files = append(files, f)
		}
	}
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("dag: %s %s: %w", verb, path, err)
		}
		if !info.IsDir() {
			add(path)
			continue
		}
		var found []string
		err = filepath.WalkDir(path, func(f string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if f != path && strings.HasPrefix(e.Name(), ".") {
				if e.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !e.IsDir() && isDAGFile(f) {
				found = append(found, f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("dag: %s %s: %w", verb, path, err)
		}
		sort.Strings(found)
		for _, f := range found {
			add(f)
		}
	}
	return files, nil
}
