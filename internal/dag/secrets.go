package dag

import (
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// secretPattern is a kind of credential that must never be pasted into a DAG file.
type secretPattern struct {
	what string
	re   *regexp.Regexp
	// redact returns what of the match may be shown, and false when the match is not a secret
	// after all (a template or an environment variable in place of a password).
	redact func(m []string) (string, bool)
}

var secretPatterns = []secretPattern{
	{
		what: "a Slack token",
		re:   regexp.MustCompile(`xox[abprs]-[A-Za-z0-9-]{10,}`),
		redact: func(m []string) (string, bool) {
			return m[0][:5] + "…", true
		},
	},
	{
		what: "a private key",
		re:   regexp.MustCompile(`-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----`),
		redact: func(m []string) (string, bool) {
			return m[0], true
		},
	},
	{
		what: "a Google API key",
		re:   regexp.MustCompile(`AIza[0-9A-Za-z_-]{35}`),
		redact: func(m []string) (string, bool) {
			return "AIza…", true
		},
	},
	{
		what: "a GitHub token",
		re:   regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}`),
		redact: func(m []string) (string, bool) {
			return m[0][:4] + "…", true
		},
	},
	{
		what: "an AWS access key",
		re:   regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`),
		redact: func(m []string) (string, bool) {
			return m[0][:4] + "…", true
		},
	},
	{
		what: "a password in a URL",
		re:   regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s:/@'"]+):([^\s/@'"]+)@`),
		redact: func(m []string) (string, bool) {
			pw := m[3]
			if strings.Contains(pw, "{{") || strings.HasPrefix(pw, "$") || strings.HasPrefix(pw, "%") ||
				strings.Trim(pw, "*x") == "" || strings.HasPrefix(pw, "<") {
				return "", false
			}
			return m[1] + "://" + m[2] + ":***@", true
		},
	},
}

const secretHint = `keep secrets out of DAG files: store it in Secret Manager and write {{ secret "NAME" }}, or {{ conn "ID" }} for a connection; rotate it, as it is now in version control`

// scanSecrets reports credentials pasted literally into any key, value or comment under n.
// It does not follow aliases: the anchored value is scanned where it is written.
func (p *parser) scanSecrets(n *yaml.Node, path string) {
	if n == nil {
		return
	}
	p.scanComments(n, path)
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.scanSecrets(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			name := "?"
			if k.Kind == yaml.ScalarNode {
				name = k.Value
			}
			p.scanSecrets(k, path)
			p.scanSecrets(v, join(path, name))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.scanSecrets(c, index(path, i))
		}
	case yaml.ScalarNode:
		p.scanText(n.Value, path, "", func(off int) int { return scalarLine(n, off) })
	}
}

func (p *parser) scanComments(n *yaml.Node, path string) {
	if n.HeadComment != "" {
		first := n.Line - strings.Count(n.HeadComment, "\n") - 1
		p.scanText(n.HeadComment, path, "a comment contains ", func(off int) int { return max(1, first+off) })
	}
	if n.LineComment != "" {
		p.scanText(n.LineComment, path, "a comment contains ", func(int) int { return n.Line })
	}
	if n.FootComment != "" {
		p.scanText(n.FootComment, path, "a comment contains ", func(off int) int { return n.Line + 1 + off })
	}
}

// scanText reports each kind of secret found in s once. lineOf maps a line offset within s to
// a line of the file.
func (p *parser) scanText(s, path, prefix string, lineOf func(off int) int) {
	if len(s) < 8 {
		return
	}
	for _, sp := range secretPatterns {
		for _, loc := range sp.re.FindAllStringSubmatchIndex(s, -1) {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = s[loc[2*i]:loc[2*i+1]]
				}
			}
			shown, ok := sp.redact(m)
			if !ok {
				continue
			}
			msg := sp.what + " (" + shown + ") is pasted into the file"
			if prefix != "" {
				msg = prefix + sp.what + " (" + shown + ")"
			}
			p.add(lineOf(strings.Count(s[:loc[0]], "\n")), path, msg, secretHint)
			break
		}
	}
}

// scalarLine maps a line offset within a scalar's value to a line of the file. It is exact for
// literal blocks (|) and approximate for folded ones.
func scalarLine(n *yaml.Node, off int) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line + 1 + off
	}
	return n.Line
}
