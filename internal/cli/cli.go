package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// App holds the command's streams, so tests can run it in-process.
type App struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// Getenv reads the environment (os.Getenv by default).
	Getenv func(string) string
	// Name is the command as the user ran it ("bin/updraft"), for the commands messages
	// suggest; "updraft" when empty.
	Name string
	// Now is the clock of the engine and the console local commands run (time.Now when nil).
	Now func() time.Time
}

// NameAsRun is how messages name the binary: argv[0] as typed when it is a path (bin/updraft,
// ./updraft), else its base name (found on PATH).
func NameAsRun(argv0 string) string {
	if argv0 == "" || filepath.IsAbs(argv0) || !strings.Contains(argv0, string(filepath.Separator)) {
		if argv0 == "" {
			return "updraft"
		}
		if filepath.IsAbs(argv0) && isOnPath(argv0) {
			return filepath.Base(argv0)
		}
		if filepath.IsAbs(argv0) {
			return argv0
		}
		return filepath.Base(argv0)
	}
	return argv0
}

// isOnPath reports whether the binary at p is what its base name finds on PATH.
func isOnPath(p string) bool {
	found, err := exec.LookPath(filepath.Base(p))
	return err == nil && found == p
}

// named rewrites the commands a message suggests (`updraft dags list`) with the binary as the
// user ran it (`bin/updraft dags list`).
func (a *App) named(msg string) string {
	if a.name() == "updraft" {
		return msg
	}
	return strings.ReplaceAll(msg, "`updraft ", "`"+a.name()+" ")
}

// now reads the App's clock.
func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// name is the binary as the user ran it.
func (a *App) name() string {
	if a.Name != "" {
		return a.Name
	}
	return "updraft"
}

// usageError is a mistake in the command line: printed with the command's usage, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name, args, help string
	// run is a command that works on the local stack or Google Cloud directly; ops one
	// written against the operations, which works locally and over --api alike.
	run    func(ctx context.Context, a *App, args []string) error
	ops    opsCommand
	hidden bool
}

func (a *App) commands() []command {
	return []command{
		{name: "dags validate", args: "PATH...", help: "check DAG files; every problem with file:line, field and a fix hint", run: cmdValidate},
		{name: "dags deploy", args: "[--prune] [--dry-run] PATH...", help: "store DAGs (one bad file never blocks the others)", ops: cmdDeploy},
		{name: "dags list", args: "[--all] [--search PREFIX]", help: "list deployed DAGs with their next run, and the DAG files that fail to load", ops: cmdDagsList},
		{name: "dags pause", args: "DAG [--dry-run]", help: "stop creating runs", ops: cmdPause},
		{name: "dags unpause", args: "DAG [--dry-run]", help: "resume (without catchup only the latest interval runs)", ops: cmdUnpause},
		{name: "schedule next", args: "DAG_FILE [-n N] [--after RFC3339]", help: "print the next runs that become due", run: cmdScheduleNext},
		{name: "dev", args: "[--addr HOST:PORT [--allow-remote]] [--tick SECONDS] [--reset] [--warm-workers N] [DAG_DIR]", help: "start everything locally on the emulators", run: cmdDev},
		{name: "test", args: "DAG_FILE [--date YYYY-MM-DD]", help: "run one run of a DAG on the emulators and watch it", run: cmdTest},
		{name: "trigger", args: "DAG [--conf JSON] [--logical-date T] [--replace] [--dry-run]", help: "start a manual run", ops: cmdTrigger},
		{name: "runs list", args: "DAG [-n N]", help: "list a DAG's runs", ops: cmdRunsList},
		{name: "runs show", args: "RUN", help: "a run's tasks: states, tries, durations (RUN is DAG/RUN_ID or a unique RUN_ID)", ops: cmdRunsShow},
		{name: "runs clear", args: "RUN [--dry-run]", help: "re-run every task of a run", ops: cmdRunsClear},
		{name: "tasks clear", args: "RUN TASK_ID... [--downstream] [--upstream] [--dry-run]", help: "re-run tasks (tries are counted on)", ops: cmdTasksClear},
		{name: "tasks mark", args: "RUN TASK_ID success|failed [--dry-run]", help: "set a finished or waiting task's state", ops: cmdTasksMark},
		{name: "backfill", args: "DAG --from D1 --to D2 [--reprocess none|failed|completed] [--max-active-runs N] [--no-wait] [--dry-run]", help: "run past intervals, server-side, with progress", ops: cmdBackfill},
		{name: "backfill status", args: "DAG", help: "a DAG's backfills and their progress", ops: cmdBackfillStatus},
		{name: "backfill cancel", args: "BACKFILL_ID [--dry-run]", help: "create no more runs for a backfill", ops: cmdBackfillCancel},
		{name: "logs", args: "RUN TASK_ID [--try N] [--json]", help: "print a task's log", ops: cmdLogs},
		{name: "vars set", args: "NAME VALUE", help: "set a variable (templates: {{ var \"NAME\" }})", ops: cmdVarsSet},
		{name: "vars get", args: "NAME", help: "print a variable", ops: cmdVarsGet},
		{name: "vars list", help: "list variables", ops: cmdVarsList},
		{name: "vars delete", args: "NAME", help: "delete a variable", ops: cmdVarsDelete},
		{name: "users grant", args: "EMAIL viewer|operator|admin", help: "give a person a role (a DAG's owner is its operator without one)", ops: cmdUsersGrant},
		{name: "users revoke", args: "EMAIL", help: "take a person's role away", ops: cmdUsersRevoke},
		{name: "users list", help: "list who holds which role", ops: cmdUsersList},
		{name: "secrets set", args: "NAME", help: "store a secret, its value read from stdin", run: cmdSecretsSet},
		{name: "secrets list", help: "list secret names (never values)", run: cmdSecretsList},
		{name: "slack inbox", help: "what the local fake Slack received", run: cmdSlackInbox},
		{name: "tick", help: "run one tick now and print what it did", run: cmdTick},
		{name: "db clean", args: "--before DATE [--dry-run]", help: "delete finished runs before DATE with their tasks and attempts", run: cmdDBClean},
		{name: "worker", help: "execute the attempt in UPDRAFT_ATTEMPT (the worker's entry point)", run: cmdWorker, hidden: true},
	}
}

// Run runs the command line and returns the exit code.
func (a *App) Run(ctx context.Context, argv []string) int {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	if a.Stdin == nil {
		a.Stdin = os.Stdin
	}
	argv, apiURL := a.splitAPIFlag(argv) // global --api URL: go through the REST API
	cmds := a.commands()
	sort.SliceStable(cmds, func(i, j int) bool { return len(cmds[i].name) > len(cmds[j].name) })
	joined := strings.Join(argv, " ")
	for _, c := range cmds {
		if joined == c.name || strings.HasPrefix(joined, c.name+" ") {
			rest := argv[len(strings.Fields(c.name)):]
			if asksHelp(rest) {
				fmt.Fprintf(a.Stdout, "usage: %s %s %s\n  %s\n", a.name(), c.name, c.args, c.help)
				return 0
			}
			if c.ops != nil {
				conn := &connection{a: a, apiURL: apiURL}
				defer conn.close()
				return a.exit(c, c.ops(ctx, a, conn.open, rest))
			}
			if apiURL != "" {
				return a.exit(c, fmt.Errorf("`%s %s` is not available over --api: it works on the local stack or talks to Google Cloud directly; "+
					"run it without --api (and without UPDRAFT_API)", a.name(), c.name))
			}
			return a.exit(c, c.run(ctx, a, rest))
		}
	}
	if len(argv) > 0 && a.groupUsage(argv) {
		if asksHelp(argv[1:]) {
			return 0
		}
		return 2
	}
	if len(argv) > 0 && argv[0] != "help" && argv[0] != "-h" && argv[0] != "--help" {
		fmt.Fprintf(a.Stderr, "%s: unknown command %q\n\n", a.name(), joined)
		a.usage(a.Stderr)
		return 2
	}
	a.usage(a.Stdout)
	return 0
}

// asksHelp reports whether the arguments ask for help (-h, -help, --help before any "--").
func asksHelp(args []string) bool {
	for _, s := range args {
		switch s {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// groupUsage prints the commands of a group named alone (`updraft vars`) and reports whether
// argv named one.
func (a *App) groupUsage(argv []string) bool {
	var in []command
	for _, c := range a.commands() {
		if f := strings.Fields(c.name); len(f) > 1 && f[0] == argv[0] && !c.hidden {
			in = append(in, c)
		}
	}
	if len(in) == 0 {
		return false
	}
	w := a.Stderr
	if asksHelp(argv[1:]) {
		w = a.Stdout
	} else if len(argv) > 1 {
		fmt.Fprintf(w, "%s %s: unknown command %q\n", a.name(), argv[0], strings.Join(argv[1:], " "))
	}
	fmt.Fprintf(w, "usage:\n")
	for _, c := range in {
		fmt.Fprintf(w, "  %s %-16s %-44s %s\n", a.name(), c.name, c.args, c.help)
	}
	return true
}

func (a *App) exit(c command, err error) int {
	var ue usageError
	var se silentError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(a.Stdout, "usage: %s %s %s\n  %s\n", a.name(), c.name, c.args, c.help)
			return 0
		}
		fmt.Fprintf(a.Stderr, "%s %s: %s\n", a.name(), c.name, a.named(err.Error()))
		fmt.Fprintf(a.Stderr, "usage: %s %s %s\n  %s\n", a.name(), c.name, c.args, c.help)
		return 2
	default:
		fmt.Fprintf(a.Stderr, "%s %s: %s\n", a.name(), c.name, a.named(errorText(err)))
		return 1
	}
}

// silentError ends the command with a code after it has printed what went wrong itself.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func (a *App) usage(w io.Writer) {
	fmt.Fprintln(w, a.name()+": Airflow-style workflows on Google Cloud, serverless.\n\n"+
		"Global flag: --api URL (or UPDRAFT_API) runs the operations commands through a deployment's REST API (see docs/api.md);\n"+
		"without it they act on the local stack as the dev identity (see docs/cli.md). Roles and the audit log apply both ways.\n\nCommands:")
	for _, c := range a.commands() {
		switch {
		case c.hidden:
		case len(c.args) > argsWidth: // the help on a line of its own, in its column
			fmt.Fprintf(w, "  %-16s %s\n  %-16s %-*s %s\n", c.name, c.args, "", argsWidth, "", c.help)
		default:
			fmt.Fprintf(w, "  %-16s %-*s %s\n", c.name, argsWidth, c.args, c.help)
		}
	}
}

// argsWidth is the width of the usage's arguments column.
const argsWidth = 44

// flags parses interleaved flags and positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// logger is the log of a long-running command (dev): its own lines on stderr, for a person.
func (a *App) logger() *slog.Logger {
	return slog.New(newConsoleHandler(a.Stderr, slog.LevelInfo))
}

// quietLogger is the log of a one-shot command (trigger, clear…): what it did is its output,
// so only warnings and errors are logged.
func (a *App) quietLogger() *slog.Logger {
	return slog.New(newConsoleHandler(a.Stderr, slog.LevelWarn))
}
