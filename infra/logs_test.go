package infra

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// metricEvents lists the jsonPayload.event values the log-based metrics filter on.
func metricEvents(cfg *tfConfig) []string {
	seen := map[string]bool{}
	re := regexp.MustCompile(`=\\?"([a-z_]+)\\?"`)
	for _, b := range cfg.ofType("google_logging_metric") {
		src := exprSource(cfg, b, attr(b.Body, "filter"))
		if !strings.Contains(src, "jsonPayload.event") && !strings.Contains(src, "local.updraft_logs") {
			continue
		}
		// The value right after the event field (local.updraft_logs ends with it).
		if i := strings.Index(src, "}="); i >= 0 {
			if m := re.FindStringSubmatch(src[i+1:]); m != nil {
				seen[m[1]] = true
			}
		} else if m := regexp.MustCompile(`jsonPayload\.event=\\?"([a-z_]+)\\?"`).FindStringSubmatch(src); m != nil {
			seen[m[1]] = true
		}
	}
	return sortedKeys(seen)
}

// metricFields lists the jsonPayload fields the log-based metrics on events read: in their
// filters, label extractors and value extractors (the event field itself included).
func metricFields(cfg *tfConfig) []string {
	seen := map[string]bool{}
	re := regexp.MustCompile(`jsonPayload\.([A-Za-z_][A-Za-z0-9_]*)`)
	for _, b := range cfg.ofType("google_logging_metric") {
		filter := exprSource(cfg, b, attr(b.Body, "filter"))
		if !strings.Contains(filter, "jsonPayload.") && !strings.Contains(filter, "local.updraft_logs") {
			continue
		}
		if strings.Contains(filter, "local.updraft_logs") {
			seen["event"] = true
		}
		for _, name := range []string{"filter", "label_extractors", "value_extractor"} {
			for _, m := range re.FindAllStringSubmatch(exprSource(cfg, b, attr(b.Body, name)), -1) {
				seen[m[1]] = true
			}
		}
	}
	return sortedKeys(seen)
}

// logContract is what the engine's source says it logs: the values of its LogEvent*
// constants (events) and LogKey* constants (attribute keys) that are passed to a call (a
// slog call, or the helper that makes one) outside their declaration.
type logContract struct {
	events, keys map[string]bool // emitted values
	declared     map[string]string
}

// readLogContract parses Go sources (file name → source).
func readLogContract(srcs map[string]string) (logContract, error) {
	c := logContract{events: map[string]bool{}, keys: map[string]bool{}, declared: map[string]string{}}
	fset := token.NewFileSet()
	var files []*ast.File
	for name, src := range srcs {
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			return c, err
		}
		files = append(files, f)
	}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) && (strings.HasPrefix(n.Name, "LogEvent") || strings.HasPrefix(n.Name, "LogKey")) {
						if v, ok := strLit(vs.Values[i]); ok {
							c.declared[n.Name] = v
						}
					}
				}
			}
		}
	}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for _, a := range call.Args {
				id, ok := a.(*ast.Ident)
				if !ok {
					continue
				}
				v, ok := c.declared[id.Name]
				switch {
				case !ok:
				case strings.HasPrefix(id.Name, "LogEvent"):
					c.events[v] = true
				default:
					c.keys[v] = true
				}
			}
			return true
		})
	}
	return c, nil
}

// checkLogContract reports metric events and fields the code never logs.
func checkLogContract(events, fields []string, c logContract) []string {
	var problems []string
	for _, e := range events {
		if !c.events[e] {
			problems = append(problems, fmt.Sprintf("a log-based metric filters on jsonPayload.event=%q, which no engine.LogEvent* constant passed to a log call emits (README.md, Log contract)", e))
		}
	}
	for _, f := range fields {
		if !c.keys[f] {
			problems = append(problems, fmt.Sprintf("a log-based metric reads jsonPayload.%s, which no engine.LogKey* constant passed to a log call emits (README.md, Log contract)", f))
		}
	}
	sort.Strings(problems)
	return problems
}

// engineSources reads the engine package's non-test Go files.
func engineSources(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "internal", "engine", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]string{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs[p] = string(b)
	}
	return srcs
}

// TestLogMetricEventsEmitted: a log-based metric whose event or field the code never logs
// counts nothing, silently. The events and fields the metrics read (monitoring.tf) must be
// values of engine's LogEvent* and LogKey* constants that the engine passes to its log calls.
func TestLogMetricEventsEmitted(t *testing.T) {
	cfg := loadTF(t, ".")
	events := metricEvents(cfg)
	if len(events) == 0 {
		t.Fatal("found no jsonPayload.event in the log-based metrics: is the filter still built from local.updraft_logs?")
	}
	fields := metricFields(cfg)
	c, err := readLogContract(engineSources(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.events) == 0 {
		t.Fatal("found no engine.LogEvent* constant passed to a log call: has the log contract moved?")
	}
	for _, p := range checkLogContract(events, fields, c) {
		t.Error(p)
	}
}

// TestLogContractChecker feeds the checker code that drifted from the metrics.
func TestLogContractChecker(t *testing.T) {
	const good = `package engine
const (
	LogKeyEvent = "event"
	LogKeyDagID = "dag_id"
	LogKeyDurationMS = "duration_ms"
	LogEventTaskFinished = "task_finished"
)
func (e *Engine) done() {
	e.log.Info("task finished", LogKeyEvent, LogEventTaskFinished, slog.String(LogKeyDagID, "d"), slog.Int64(LogKeyDurationMS, 1))
}
`
	events, fields := []string{"task_finished"}, []string{"dag_id", "duration_ms", "event"}
	check := func(src string) []string {
		c, err := readLogContract(map[string]string{"engine.go": src})
		if err != nil {
			t.Fatal(err)
		}
		return checkLogContract(events, fields, c)
	}
	expect(t, check(good), "")
	// The event declared but never logged.
	expect(t, check(strings.Replace(good, "LogKeyEvent, LogEventTaskFinished, ", "", 1)), `jsonPayload.event="task_finished"`)
	// Seconds where the metric reads milliseconds.
	expect(t, check(strings.ReplaceAll(good, `"duration_ms"`, `"duration_seconds"`)), "jsonPayload.duration_ms")
	// A string literal instead of the constant does not count: the contract lives in constants.
	expect(t, check(strings.Replace(good, "slog.String(LogKeyDagID,", `slog.String("dag_id",`, 1)), "jsonPayload.dag_id")

	// The metrics' side: events and fields read from monitoring.tf's shape.
	cfg := mustParseTF(t, `
locals {
  updraft_logs = "resource.type=\"cloud_run_revision\" AND jsonPayload.event"
}
resource "google_logging_metric" "d" {
  name            = "updraft/d"
  filter          = "${local.updraft_logs}=\"task_finished\" AND jsonPayload.state=\"failed\""
  value_extractor = "EXTRACT(jsonPayload.duration_ms)"
  label_extractors = {
    dag_id = "EXTRACT(jsonPayload.dag_id)"
  }
}
resource "google_logging_metric" "other" {
  name   = "updraft/other"
  filter = "resource.type=\"cloud_scheduler_job\" AND severity>=ERROR"
}
`)
	if got := fmt.Sprint(metricEvents(cfg)); got != "[task_finished]" {
		t.Errorf("metricEvents = %s; want [task_finished]", got)
	}
	if got := fmt.Sprint(metricFields(cfg)); got != "[dag_id duration_ms event state]" {
		t.Errorf("metricFields = %s; want [dag_id duration_ms event state]", got)
	}
}
