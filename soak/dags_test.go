//go:build soak

package soak

import (
	"fmt"
	"path/filepath"
	"strings"
)

// dagFile builds a DAG file: its header lines (id, owner, schedule…) and its tasks.
func dagFile(header string, tasks ...string) string {
	return strings.TrimSpace(header) + "\nowner: soak@example.com\ntasks:\n" + strings.Join(tasks, "")
}

// shellTask is a `shell` task: fields holds extra task lines (`retries: 1`, `timeout: 3s`,
// `needs: [a]`), with holds extra `with:` lines (`env: {…}`), command is the script.
func shellTask(id, fields, with, command string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - id: %s\n    type: shell\n", id)
	for _, l := range lines(fields) {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	b.WriteString("    with:\n")
	for _, l := range lines(with) {
		fmt.Fprintf(&b, "      %s\n", l)
	}
	b.WriteString("      command: |\n")
	for _, l := range lines(command) {
		fmt.Fprintf(&b, "        %s\n", l)
	}
	return b.String()
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// rec is the command line that appends an EVENT line to the task's file under work.
func rec(work, file, event string, words ...string) string {
	return strings.TrimSpace(fmt.Sprintf("'%s' rec '%s' %s $$ %s", filepath.Join(work, "soak.sh"), filepath.Join(work, file), event, strings.Join(words, " ")))
}

// pids is the command line that records the pids (shell words such as $$ and $!) into a file.
func pids(work, file string, words ...string) string {
	return fmt.Sprintf("'%s' pids '%s' %s", filepath.Join(work, "soak.sh"), filepath.Join(work, file), strings.Join(words, " "))
}

// alive is a shell substitution printing how many processes of a pid file are alive.
func alive(work, file string) string {
	return fmt.Sprintf("$('%s' alive '%s')", filepath.Join(work, "soak.sh"), filepath.Join(work, file))
}
