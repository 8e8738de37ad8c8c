package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpExitsZeroForEveryCommand: `--help` (and -h) after any command prints its usage on
// stdout and exits 0, without running it (`updraft dev --help` used to exit 2).
func TestHelpExitsZeroForEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range (&App{}).commands() {
		if c.hidden {
			continue
		}
		for _, flag := range []string{"--help", "-h"} {
			args := append(strings.Fields(c.name), flag)
			out, errOut, code := run(t, nil, args...)
			if code != 0 || !strings.Contains(out, "usage: updraft "+c.name) {
				t.Errorf("updraft %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
	if out, _, code := run(t, nil, "--help"); code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("updraft --help: exit %d", code)
	}
}

// TestAGroupAlonePrintsItsCommands: `updraft vars` says what vars can do, not "unknown command".
func TestAGroupAlonePrintsItsCommands(t *testing.T) {
	t.Parallel()
	_, errOut, code := run(t, nil, "vars")
	if code != 2 || strings.Contains(errOut, "unknown command") || !strings.Contains(errOut, "updraft vars set") || !strings.Contains(errOut, "updraft vars delete") {
		t.Fatalf("updraft vars: exit %d\n%s", code, errOut)
	}
	out, _, code := run(t, nil, "vars", "--help")
	if code != 0 || !strings.Contains(out, "updraft vars list") {
		t.Fatalf("updraft vars --help: exit %d\n%s", code, out)
	}
	_, errOut, code = run(t, nil, "vars", "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "updraft vars get") {
		t.Fatalf("updraft vars frobnicate: exit %d\n%s", code, errOut)
	}
}

// TestMessagesNameTheBinaryAsRun: a user who ran bin/updraft is told to run bin/updraft.
func TestMessagesNameTheBinaryAsRun(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	env := map[string]string{"UPDRAFT_HOME": t.TempDir()}
	app := &App{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: func(k string) string { return env[k] }, Name: "bin/updraft"}
	if code := app.Run(context.Background(), []string{"dags", "list"}); code != 1 {
		t.Fatalf("dags list without a backend: exit %d", code)
	}
	if !strings.Contains(errb.String(), "bin/updraft dags list: ") || !strings.Contains(errb.String(), "`bin/updraft dev`") {
		t.Fatalf("the message does not name bin/updraft:\n%s", errb.String())
	}
	for argv0, want := range map[string]string{"bin/updraft": "bin/updraft", "./updraft": "./updraft", "updraft": "updraft", "": "updraft"} {
		if got := NameAsRun(argv0); got != want {
			t.Errorf("NameAsRun(%q) = %q; want %q", argv0, got, want)
		}
	}
}

// TestOutputIsTextNotEscapedJSON: rendered arguments and JSON log lines are shown as a person
// wrote them: `&&`, not \u0026\u0026.
func TestOutputIsTextNotEscapedJSON(t *testing.T) {
	t.Parallel()
	if got := readableJSON(`{"command":"make a \u0026\u0026 make b \u003e out"}`); got != `{"command":"make a && make b > out"}` {
		t.Errorf("readableJSON: %s", got)
	}
	if got := readableJSON("not json & fine"); got != "not json & fine" {
		t.Errorf("readableJSON of text: %s", got)
	}
	var b bytes.Buffer
	w := newConsoleLines(&b)
	_, _ = w.Write([]byte(`{"time":"2026-12-07T08:00:00Z","severity":"WARNING","message":"retrying a \u0026\u0026 b","attempt":"x1"}` + "\n" + "plain line\n"))
	got := b.String()
	if strings.Contains(got, "{") || strings.Contains(got, `\u0026`) || !strings.Contains(got, `WARN  retrying a && b attempt=x1`) || !strings.Contains(got, "plain line\n") {
		t.Errorf("console lines:\n%s", got)
	}
}
