package dag

import (
	"fmt"
	"strings"
	"testing"
)

// validateText parses a DAG file's text and returns its problems, one per line.
func validateText(t *testing.T, src string) string {
	t.Helper()
	_, err := Parse("x.yaml", []byte(src), Options{})
	if err == nil {
		return ""
	}
	return err.Error()
}

const limitsHead = "id: x\nowner: a@example.com\ntasks:\n"

// TestValidateChecksTemplateContext: a name the context lacks fails validation with its
// file:line and a suggestion, not at run time; names that exist, and fields of a range's or
// with's own dot, pass.
func TestValidateChecksTemplateContext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ src, want string }{
		{limitsHead + "  - id: a\n    type: shell\n    with: {command: 'echo {{ .dss }}'}\n", `x.yaml:6: tasks[0].with.command: template reads .dss, which is not in the context (hint: did you mean .ds?`},
		{limitsHead + "  - id: a\n    type: shell\n    with:\n      command: |\n        echo ok\n        echo {{ .dag.id }}\n", `x.yaml:9: tasks[0].with.command: template reads .dag.id`},
		{limitsHead + "  - id: a\n    type: shell\n    with: {command: '{{ range .params.list }}{{ $.dss }}{{ end }}'}\n", `template reads .dss`},
		{limitsHead + "  - id: a\n    type: shell\n    with: {command: '{{ if .params.x }}{{ .tss }}{{ end }}'}\n", `template reads .tss`},
		{limitsHead + "  - id: a\n    type: shell\n    with: {command: '{{ nosuch .ds }}'}\n", `template calls unknown function "nosuch"`},
	} {
		if got := validateText(t, c.src); !strings.Contains(got, c.want) {
			t.Errorf("%s\ngot:  %s\nwant: %s", c.src, got, c.want)
		}
	}
	ok := limitsHead + "  - id: a\n    type: shell\n    with:\n      command: 'echo \"$X\"'\n      env:\n        X: " +
		`'{{ .ds }} {{ .ts_nodash }} {{ .dag.dag_id }} {{ .ti.try_number }} {{ .dag_run.conf }} {{ .run_id }} {{ range .params.rows }}{{ .user }}{{ end }} {{ with .params.x }}{{ .anything }}{{ end }}'` + "\n"
	if got := validateText(t, ok); got != "" {
		t.Fatalf("names the context has were refused:\n%s", got)
	}
}

// TestValidateChecksLimits: a DAG with more tasks than MaxTasks, or a file too large to be
// stored as one document, fails validation (it used to validate and then fail to deploy).
func TestValidateChecksLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(limitsHead)
	for i := range MaxTasks + 1 {
		fmt.Fprintf(&b, "  - {id: t%d, type: noop}\n", i)
	}
	got := validateText(t, b.String())
	if want := fmt.Sprintf("x.yaml:%d: tasks: the DAG has %d tasks; the limit is %d", 4+MaxTasks, MaxTasks+1, MaxTasks); !strings.Contains(got, want) {
		t.Fatalf("%d tasks:\n%s\nwant %q", MaxTasks+1, got, want)
	}

	big := limitsHead + "  - id: a\n    type: shell\n    with:\n      command: |\n" + strings.Repeat("        echo 0123456789012345678901234567890123456789012345678901234567890123456789\n", 15000)
	got = validateText(t, big)
	if !strings.Contains(got, "x.yaml: the file is") || !strings.Contains(got, "must fit in 1000000 bytes") {
		t.Fatalf("a %d-byte file:\n%.300s", len(big), got)
	}

	// Under the file limit, but its file and parsed form together are not.
	half := limitsHead + "  - id: a\n    type: shell\n    with:\n      command: |\n" + strings.Repeat("        echo 0123456789012345678901234567890123456789012345678901234567890123456789\n", 8000)
	got = validateText(t, half)
	if !strings.Contains(got, "takes") || !strings.Contains(got, "the limit is 1000000") {
		t.Fatalf("a %d-byte file whose spec doubles it:\n%.300s", len(half), got)
	}
}
