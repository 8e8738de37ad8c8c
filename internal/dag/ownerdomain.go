package dag

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// RepoConfigFile is the repository-level settings file: found in the working directory or
// the nearest parent that has one.
const RepoConfigFile = "updraft.yaml"

// RepoConfig is what updraft.yaml may say about every DAG of the repository.
type RepoConfig struct {
	// OwnerDomains, when set, are the only email domains a DAG's owner may have
	// (owner_domain: socar.kr, or a list).
	OwnerDomains []string
}

// LoadRepoConfig finds updraft.yaml in dir or its parents and reads it; no file is an empty
// config. Problems in it come back as Problems with the file and line.
func LoadRepoConfig(dir string) (RepoConfig, Problems) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, RepoConfigFile)
		data, err := os.ReadFile(p)
		if err == nil {
			return parseRepoConfig(p, data)
		}
		if filepath.Dir(d) == d {
			return RepoConfig{}, nil
		}
	}
}

func parseRepoConfig(file string, data []byte) (RepoConfig, Problems) {
	var cfg RepoConfig
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return cfg, Problems{{File: file, Msg: "not valid YAML: " + err.Error(), Hint: "write owner_domain: example.com"}}
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return cfg, Problems{{File: file, Line: root.Line, Msg: "must be a mapping of settings", Hint: "write owner_domain: example.com"}}
	}
	var probs Problems
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "owner_domain":
			var list []string
			switch v.Kind {
			case yaml.ScalarNode:
				list = []string{v.Value}
			case yaml.SequenceNode:
				for _, c := range v.Content {
					list = append(list, c.Value)
				}
			}
			for _, dom := range list {
				if dom == "" || strings.ContainsAny(dom, "@ /") || !strings.Contains(dom, ".") {
					probs = append(probs, Problem{File: file, Line: v.Line, Field: "owner_domain",
						Msg: fmt.Sprintf("%s is not an email domain", quoteShort(dom)), Hint: "write owner_domain: example.com, or a list of domains"})
					continue
				}
				cfg.OwnerDomains = append(cfg.OwnerDomains, strings.ToLower(dom))
			}
		default:
			probs = append(probs, Problem{File: file, Line: k.Line, Field: k.Value, Msg: fmt.Sprintf("unknown setting %s", quoteShort(k.Value)),
				Hint: "updraft.yaml knows owner_domain"})
		}
	}
	return cfg, probs
}

// checkOwnerDomain reports an owner outside the repository's owner domains.
func (p *parser) checkOwnerDomain(line int, owner string) {
	if len(p.opts.OwnerDomains) == 0 {
		return
	}
	_, domain, _ := strings.Cut(owner, "@")
	for _, d := range p.opts.OwnerDomains {
		if strings.EqualFold(domain, d) {
			return
		}
	}
	p.add(line, "owner", fmt.Sprintf("owner %s is not an address of %s (%s's owner_domain)", quoteShort(owner),
		strings.Join(p.opts.OwnerDomains, " or "), RepoConfigFile),
		fmt.Sprintf("use your team's address, e.g. data-eng@%s", p.opts.OwnerDomains[0]))
}
