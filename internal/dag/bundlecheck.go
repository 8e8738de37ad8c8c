package dag

import "gopkg.in/yaml.v3"

// argProblems places problems about a task's `with` at the line of the argument they name.
func (p *parser) argProblems(aps []ArgProblem, taskLine int, path string, with *yaml.Node) {
	for _, ap := range aps {
		line, field := taskLine, join(path, "with")
		if with != nil {
			line = argLine(with, ap.Arg)
		}
		if ap.Arg != "" {
			field = join(field, ap.Arg)
		}
		p.add(line, field, ap.Msg, ap.Hint)
	}
}
