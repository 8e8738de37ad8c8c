package bundle

import (
	"bufio"
	"bytes"
	"path"
	"strings"
)

// DefaultIgnores are left out of every bundle, before .updraftignore's own patterns.
var DefaultIgnores = []string{".git", "__pycache__", "*.pyc"}

// IgnoreFile is the file in a bundle's root listing what to leave out, in gitignore syntax.
const IgnoreFile = ".updraftignore"

// pattern is one gitignore line.
type pattern struct {
	negate   bool
	dirOnly  bool
	anchored bool     // matches from the root (had a slash before its end)
	parts    []string // slash-separated glob segments; "**" spans any number of them
}

// Ignore matches slash-separated paths relative to the bundle root against gitignore
// patterns: `#` comments, `!` negation, a trailing `/` for directories only, a leading or
// inner `/` anchoring to the root, `*`, `?`, `[…]` and `**`.
type Ignore struct{ pats []pattern }

// ParseIgnore reads gitignore-syntax lines; the defaults come first, so a `!` line may
// re-include what they leave out.
func ParseIgnore(defaults []string, file []byte) *Ignore {
	ig := &Ignore{}
	for _, l := range defaults {
		ig.add(l)
	}
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		ig.add(sc.Text())
	}
	return ig
}

func (ig *Ignore) add(line string) {
	line = strings.TrimRight(line, " \t\r")
	if line == "" || strings.HasPrefix(line, "#") {
		return
	}
	var p pattern
	if strings.HasPrefix(line, "!") {
		p.negate, line = true, line[1:]
	} else if strings.HasPrefix(line, `\`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	if strings.Contains(line, "/") {
		p.anchored = true
	}
	line = strings.TrimPrefix(line, "/")
	if line == "" {
		return
	}
	p.parts = strings.Split(line, "/")
	ig.pats = append(ig.pats, p)
}

// Match reports whether the path (relative, slash-separated) is ignored; isDir says whether it
// names a directory. The last matching pattern wins, as in git.
func (ig *Ignore) Match(rel string, isDir bool) bool {
	segs := strings.Split(rel, "/")
	ignored := false
	for _, p := range ig.pats {
		if p.dirOnly && !isDir {
			continue
		}
		if p.matches(segs) {
			ignored = !p.negate
		}
	}
	return ignored
}

func (p pattern) matches(segs []string) bool {
	if p.anchored {
		return globSegs(p.parts, segs)
	}
	// An unanchored pattern matches at any depth.
	for i := range segs {
		if globSegs(p.parts, segs[i:]) {
			return true
		}
	}
	return false
}

// globSegs matches glob segments against path segments, "**" matching zero or more.
func globSegs(pats, segs []string) bool {
	if len(pats) == 0 {
		return len(segs) == 0
	}
	if pats[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if globSegs(pats[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, err := path.Match(pats[0], segs[0])
	return err == nil && ok && globSegs(pats[1:], segs[1:])
}
