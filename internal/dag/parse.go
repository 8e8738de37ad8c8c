package dag

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Options configures parsing.
type Options struct {
	// TaskTypes lists the known task types. Nil means BuiltinTaskTypes.
	TaskTypes []string
	// ValidateCron checks a schedule and returns an error whose text is shown to the user. It is
	// injected so that this package does not depend on the scheduler; the caller passes the
	// scheduler's cron parser. Nil means schedules are not checked.
	ValidateCron func(expr string) error
	// CheckArgs checks a task's `with` for its type (shell's are checked here). Its problems
	// name an argument path such as "url" or "headers.Accept"; the parser adds the file, the
	// line of that argument and the task's path. Nil means arguments are not checked.
	CheckArgs func(taskType string, with map[string]any) []ArgProblem
	// OwnerDomains, when set, are the email domains an owner must have (updraft.yaml's
	// owner_domain, see LoadRepoConfig).
	OwnerDomains []string
	// CheckFiles checks the bundle files a task names (a python module, an sql_file, an
	// include, a script): given the DAG file's path, its problems are placed like CheckArgs'.
	// Nil means files are not checked.
	CheckFiles func(dagFile, taskType string, with map[string]any) []ArgProblem
}

// ArgProblem is one thing wrong with a task's arguments.
type ArgProblem struct {
	Arg  string // path inside with, e.g. "url" or "headers.Accept"; "" for with itself
	Msg  string
	Hint string
}

// BuiltinTaskTypes lists the task types Updraft ships with, as DESIGN.md's "Task types" table
// names them.
var BuiltinTaskTypes = []string{
	"noop", "shell", "go", "http", "bigquery.query", "slack.post", "pubsub.publish",
	"cloudrun.job", "dag.trigger", "branch",
	"sensor.time", "sensor.http", "sensor.bigquery_table", "sensor.dag_run", "python",
}

// The field names a DAG file may use, per level. docs/dag-schema.json must list the same names;
// a test keeps them in step.
var (
	dagFields = []string{
		"id", "description", "owner", "schedule", "timezone", "start", "end", "catchup", "paused",
		"max_active_runs", "max_active_tasks", "dagrun_timeout", "sla", "params", "defaults",
		"alerts", "tags", "tasks",
	}
	taskFields = []string{
		"id", "type", "with", "needs", "trigger_rule", "retries", "retry_delay",
		"retry_exponential_backoff", "max_retry_delay", "timeout", "resources", "executor",
		"depends_on_past", "sla", "alerts", "for_each", "poke_interval", "sensor_timeout",
		"soft_fail",
	}
	defaultsFields = []string{
		"retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay", "timeout",
		"resources", "depends_on_past", "trigger_rule", "alerts",
	}
	alertsFields    = []string{"slack"}
	slackFields     = []string{"channel", "on", "connection"}
	alertEvents     = []string{"failure", "retry", "success", "sla_miss"}
	shellWithFields = []string{"command", "env", "cwd"}
	triggerRules    = []string{
		"all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
		"one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always",
	}
)

// MaxIDLength is the longest DAG or task id allowed.
const MaxIDLength = 100

var (
	idPattern        = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	idBadChars       = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
	resourcesPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)
	envNamePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	yamlErrLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	tzAbbreviation   = regexp.MustCompile(`^[A-Z]{2,5}$|^[A-Z]{3,5}[0-9+-][A-Z0-9+-]*$`)
)

// ValidateID checks a DAG or task id: letters, digits, "_", "-" and "."; at most MaxIDLength
// characters; not starting with "." or "__", which Firestore reserves for its own ids.
func ValidateID(id string) error {
	if why := idProblem(id); why != "" {
		return fmt.Errorf("id %s %s", quoteShort(id), why)
	}
	return nil
}

// idProblem says why id is not a valid id, or "" when it is valid.
func idProblem(id string) string {
	switch {
	case id == "":
		return "is empty"
	case len(id) > MaxIDLength:
		return fmt.Sprintf("is %d characters long; the limit is %d", len(id), MaxIDLength)
	case !idPattern.MatchString(id):
		return "may only contain letters, digits, \"_\", \"-\" and \".\""
	case strings.HasPrefix(id, "."):
		return "must not start with \".\" (Firestore reserves such ids)"
	case strings.HasPrefix(id, "__"):
		return "must not start with \"__\" (Firestore reserves such ids)"
	}
	return ""
}

// idHint suggests a valid id close to a bad one.
func idHint(id string) string {
	fixed := idBadChars.ReplaceAllString(id, "_")
	fixed = strings.TrimLeft(fixed, "._")
	if len(fixed) > MaxIDLength {
		fixed = fixed[:MaxIDLength]
	}
	if fixed != "" && fixed != id && idProblem(fixed) == "" {
		return fmt.Sprintf("for example %q", fixed)
	}
	return "use letters, digits, \"_\", \"-\" and \".\", e.g. daily_sales"
}

// Parse parses and validates one DAG file's bytes. file is the path shown in problems. On any
// problem it returns a nil DAG and the Problems, sorted by line.
func Parse(file string, data []byte, opts Options) (*DAG, error) {
	d, _, probs := parse(file, data, opts)
	if len(probs) > 0 {
		return nil, probs
	}
	return d, nil
}

// parser holds the state of parsing one file.
type parser struct {
	file      string
	opts      Options
	probs     Problems
	budget    int
	expanding map[*yaml.Node]bool
}

func (p *parser) add(line int, field, msg, hint string) {
	p.probs = append(p.probs, Problem{File: p.file, Line: line, Field: field, Msg: msg, Hint: hint})
}

// taskInfo is what the checks after parsing need to know about a task's source.
type taskInfo struct {
	path    string
	line    int
	idLine  int
	set     map[string]bool // fields given a non-null value that parsed
	needs   []*yaml.Node    // the node of each entry of Task.Needs
	with    *yaml.Node
	forEach *yaml.Node
}

// parse returns the DAG (meaningful only without problems), the line of its id and the problems.
func parse(file string, data []byte, opts Options) (*DAG, int, Problems) {
	p := &parser{file: file, opts: opts, budget: maxValueNodes, expanding: map[*yaml.Node]bool{}}
	sum := sha256.Sum256(data)
	d := &DAG{
		Timezone:       DefaultTimezone,
		MaxActiveRuns:  DefaultMaxActiveRuns,
		MaxActiveTasks: DefaultMaxActiveTasks,
		Source:         SourceInfo{File: file, Hash: hex.EncodeToString(sum[:])},
	}
	if !p.checkFileSize(data) {
		return nil, 0, sortProblems(p.probs)
	}
	root := p.decode(data)
	if root == nil {
		return nil, 0, sortProblems(p.probs)
	}
	f, ok := p.fields(root, root.Line, "", dagFields, "a DAG file")
	if !ok {
		return nil, 0, sortProblems(p.probs)
	}
	idLine := p.dagFields(d, f, root)
	infos := p.tasks(d, f, root)
	p.checkGraph(d, infos)
	p.checkTemplates(d, infos)
	p.checkValues(d, infos)
	p.checkLimits(d, data)
	if len(p.probs) > 0 {
		return nil, idLine, sortProblems(p.probs)
	}
	return d, idLine, nil
}

// decode parses the YAML and returns the top-level node, or nil after reporting why there is
// none. It also scans every document for pasted secrets.
func (p *parser) decode(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := safeDecode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "the file is empty", "a DAG file needs at least id, owner and tasks")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	p.scanSecrets(&doc, "")
	var next yaml.Node
	err := safeDecode(dec, &next)
	switch {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
	default:
		p.scanSecrets(&next, "")
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			p.add(next.Content[0].Line, "", "the file holds more than one YAML document",
				"put each DAG in its own file and remove the \"---\" separator")
		}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.add(0, "", "the file is empty", "a DAG file needs at least id, owner and tasks")
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "a DAG file must be a mapping of fields, not "+describe(root),
			"start with fields like \"id: my_dag\", \"owner: you@example.com\" and \"tasks:\"")
		return nil
	}
	return root
}

// safeDecode decodes one document, turning a panic inside the YAML library into an error.
func safeDecode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the YAML parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

func (p *parser) yamlError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	hint := "check the indentation and quoting around this line"
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		hint = "quote a value that contains \": \", or fix the indentation of this line"
	case strings.Contains(msg, "found character that cannot start any token"):
		hint = "indent with spaces, not tabs, and quote values that start with @ or `"
	case strings.Contains(msg, "did not find expected key"):
		hint = "a line at or below this one is probably indented differently from its neighbours: the keys of a mapping must line up"
	case strings.Contains(msg, "found undefined alias") || strings.Contains(msg, "unknown anchor"):
		hint = "define the anchor (&name) before using it (*name)"
	}
	p.add(line, "", "invalid YAML: "+msg, hint)
}

// get returns field name when it is present with a non-null value.
func get(f map[string]pair, name string) (pair, bool) {
	pr, ok := f[name]
	if !ok || isNull(pr.val) {
		return pair{}, false
	}
	return pr, true
}

// str reads a scalar as its text.
func (p *parser) str(pr pair, path, hint string) (string, bool) {
	v := resolve(pr.val)
	if v.Kind != yaml.ScalarNode {
		p.add(pr.val.Line, path, "must be a string, not "+describe(v), hint)
		return "", false
	}
	return v.Value, true
}

// boolean reads a YAML boolean.
func (p *parser) boolean(pr pair, path string) (bool, bool) {
	v := resolve(pr.val)
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!bool" {
		var b bool
		if err := v.Decode(&b); err == nil {
			return b, true
		}
	}
	hint := "write true or false"
	if v.Kind == yaml.ScalarNode {
		switch strings.ToLower(v.Value) {
		case "yes", "on", "y", "true":
			hint = "write true (unquoted); YAML 1.2 reads yes/on/\"true\" as strings"
		case "no", "off", "n", "false":
			hint = "write false (unquoted); YAML 1.2 reads no/off/\"false\" as strings"
		}
	}
	p.add(pr.val.Line, path, "must be true or false, not "+describe(v), hint)
	return false, false
}

// integer reads a whole number that is at least min.
func (p *parser) integer(pr pair, path string, min int) (int, bool) {
	v := resolve(pr.val)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		p.add(pr.val.Line, path, "must be a whole number, not "+describe(v), fmt.Sprintf("write a number of at least %d, unquoted", min))
		return 0, false
	}
	var n int
	if err := v.Decode(&n); err != nil || n > 1<<31 {
		p.add(pr.val.Line, path, "number out of range: "+quoteShort(v.Value), "use a smaller number")
		return 0, false
	}
	if n < min {
		p.add(pr.val.Line, path, fmt.Sprintf("must be at least %d, not %d", min, n), fmt.Sprintf("use a number of at least %d", min))
		return 0, false
	}
	return n, true
}

// duration reads a duration (see ParseDuration); a bare whole number means seconds.
func (p *parser) duration(pr pair, path string) (time.Duration, bool) {
	v := resolve(pr.val)
	const hint = "write a duration like 90s, 5m, 1h30m or 1d, or a whole number of seconds"
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!str" && v.ShortTag() != "!!int") {
		p.add(pr.val.Line, path, "must be a duration, not "+describe(v), hint)
		return 0, false
	}
	text := v.Value
	if v.ShortTag() == "!!int" {
		var n int64
		if err := v.Decode(&n); err != nil {
			p.add(pr.val.Line, path, "number out of range: "+quoteShort(v.Value), hint)
			return 0, false
		}
		if n < 0 {
			p.add(pr.val.Line, path, "must not be negative", hint)
			return 0, false
		}
		text = strconv.FormatInt(n, 10)
	}
	d, err := ParseDuration(text)
	if err != nil {
		if strings.HasPrefix(strings.TrimSpace(text), "-") {
			p.add(pr.val.Line, path, "must not be negative", hint)
		} else {
			p.add(pr.val.Line, path, err.Error(), hint)
		}
		return 0, false
	}
	return d, true
}

// stringList reads a list of non-empty, distinct strings, returning each with its node.
func (p *parser) stringList(pr pair, path, example string) ([]string, []*yaml.Node) {
	v := resolve(pr.val)
	if v.Kind != yaml.SequenceNode {
		hint := "write a list, e.g. " + example
		if v.Kind == yaml.ScalarNode && v.Value != "" && !strings.ContainsAny(v.Value, "[]{},") {
			hint = fmt.Sprintf("write a list: [%s]", v.Value)
		}
		p.add(pr.val.Line, path, "must be a list, not "+describe(v), hint)
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	seen := map[string]int{}
	for i, item := range v.Content {
		iv := resolve(item)
		if iv == nil || iv.Kind != yaml.ScalarNode || iv.ShortTag() == "!!null" {
			p.add(item.Line, index(path, i), "must be a string, not "+describe(iv), "write a list of names, e.g. "+example)
			continue
		}
		if iv.Value == "" {
			p.add(item.Line, index(path, i), "is empty", "remove the empty entry")
			continue
		}
		if first, dup := seen[iv.Value]; dup {
			p.add(item.Line, index(path, i), fmt.Sprintf("%s is listed twice (first at line %d)", quoteShort(iv.Value), first), "remove the repeated entry")
			continue
		}
		seen[iv.Value] = item.Line
		out = append(out, iv.Value)
		nodes = append(nodes, item)
	}
	return out, nodes
}

// dagFields reads the top-level fields except tasks into d and returns the line of the id.
func (p *parser) dagFields(d *DAG, f map[string]pair, root *yaml.Node) int {
	idLine := 0
	if pr, ok := get(f, "id"); ok {
		idLine = pr.val.Line
		if s, ok := p.str(pr, "id", "write id: my_dag"); ok {
			if why := idProblem(s); why != "" {
				p.add(pr.val.Line, "id", fmt.Sprintf("DAG id %s %s", quoteShort(s), why), idHint(s))
			}
			d.ID = s
		}
	} else {
		hint := "add \"id: my_dag\": letters, digits, \"_\", \"-\" and \".\""
		base := strings.TrimSuffix(filepath.Base(p.file), filepath.Ext(p.file))
		if idProblem(base) == "" {
			hint = fmt.Sprintf("add \"id: %s\"", base)
		}
		p.add(root.Line, "id", "id is required", hint)
	}
	if pr, ok := get(f, "description"); ok {
		d.Description, _ = p.str(pr, "description", "quote the text")
	}
	if pr, ok := get(f, "owner"); ok {
		if s, ok := p.str(pr, "owner", "write owner: team@example.com"); ok {
			if why := checkEmail(s); why != "" {
				p.add(pr.val.Line, "owner", fmt.Sprintf("owner %s is not an email address: %s", quoteShort(s), why),
					"write one email address, e.g. owner: data-eng@example.com; it is used for Slack mentions and audit")
			} else {
				p.checkOwnerDomain(pr.val.Line, s)
			}
			d.Owner = s
		}
	} else {
		p.add(root.Line, "owner", "owner is required", "add \"owner: team@example.com\"; it is used for Slack mentions, audit and the DAG operator role")
	}
	if pr, ok := get(f, "schedule"); ok {
		const hint = "a schedule is a 5-field cron (minute hour day-of-month month day-of-week), e.g. \"5 0 * * *\", or @hourly, @daily, @weekly, @monthly, @yearly; leave it out for a manual-only DAG"
		if s, ok := p.str(pr, "schedule", hint); ok {
			s = strings.TrimSpace(s)
			switch {
			case s == "":
				p.add(pr.val.Line, "schedule", "schedule is empty", hint)
			case p.opts.ValidateCron != nil:
				if err := p.opts.ValidateCron(s); err != nil {
					p.add(pr.val.Line, "schedule", fmt.Sprintf("invalid schedule %s: %v", quoteShort(s), err), hint)
				}
			}
			d.Schedule = s
		}
	}
	loc := time.UTC
	if pr, ok := get(f, "timezone"); ok {
		if s, ok := p.str(pr, "timezone", "write an IANA name like Asia/Seoul"); ok {
			if l, msg, hint := loadTimezone(s); msg != "" {
				p.add(pr.val.Line, "timezone", msg, hint)
			} else {
				loc = l
				d.Timezone = s
			}
		}
	}
	if pr, ok := get(f, "start"); ok {
		d.Start = p.timeValue(pr, "start", loc)
	}
	if pr, ok := get(f, "end"); ok {
		d.End = p.timeValue(pr, "end", loc)
		if d.Start != nil && d.End != nil && d.End.Before(*d.Start) {
			p.add(pr.val.Line, "end", fmt.Sprintf("end (%s) is before start (%s)", d.End.Format(time.RFC3339), d.Start.Format(time.RFC3339)),
				"move end after start, or remove end")
		}
	}
	if pr, ok := get(f, "catchup"); ok {
		d.Catchup, _ = p.boolean(pr, "catchup")
	}
	if pr, ok := get(f, "paused"); ok {
		d.Paused, _ = p.boolean(pr, "paused")
	}
	if pr, ok := get(f, "max_active_runs"); ok {
		if n, ok := p.integer(pr, "max_active_runs", 1); ok {
			d.MaxActiveRuns = n
		}
	}
	if pr, ok := get(f, "max_active_tasks"); ok {
		if n, ok := p.integer(pr, "max_active_tasks", 1); ok {
			d.MaxActiveTasks = n
		}
	}
	if pr, ok := get(f, "dagrun_timeout"); ok {
		d.DagrunTimeout, _ = p.duration(pr, "dagrun_timeout")
	}
	if pr, ok := get(f, "sla"); ok {
		d.SLA, _ = p.duration(pr, "sla")
	}
	if pr, ok := get(f, "params"); ok {
		if v := resolve(pr.val); v.Kind != yaml.MappingNode {
			p.add(pr.val.Line, "params", "must be a mapping, not "+describe(v), "write params: {region: asia-northeast3}")
		} else if m, ok := p.value(v, "params").(map[string]any); ok {
			d.Params = m
			d.ParamSpecs = p.paramSpecs(v, m)
		}
	}
	if pr, ok := get(f, "defaults"); ok {
		d.Defaults = p.defaults(pr)
	}
	if pr, ok := get(f, "alerts"); ok {
		d.Alerts = p.alerts(pr, "alerts")
	}
	if pr, ok := get(f, "tags"); ok {
		d.Tags, _ = p.stringList(pr, "tags", "[finance, daily]")
	}
	return idLine
}

// checkEmail says why s is not an email address, or "".
func checkEmail(s string) string {
	if strings.ContainsAny(s, " \t\r\n,;<>") {
		return "it must be a single address without spaces, commas or <>"
	}
	if strings.Count(s, "@") != 1 {
		return "it needs exactly one @"
	}
	local, domain, _ := strings.Cut(s, "@")
	switch {
	case local == "":
		return "nothing before the @"
	case !strings.Contains(domain, "."):
		return "the domain after the @ needs a dot"
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return "the domain after the @ is malformed"
	}
	return ""
}

// tzAbbreviations suggests IANA names for time zone abbreviations people write.
var tzAbbreviations = map[string]string{
	"KST": "Asia/Seoul", "JST": "Asia/Tokyo", "CST": "America/Chicago", "CDT": "America/Chicago",
	"EST": "America/New_York", "EDT": "America/New_York", "PST": "America/Los_Angeles",
	"PDT": "America/Los_Angeles", "MST": "America/Denver", "MDT": "America/Denver",
	"CET": "Europe/Berlin", "CEST": "Europe/Berlin", "BST": "Europe/London", "IST": "Asia/Kolkata",
	"SGT": "Asia/Singapore", "HKT": "Asia/Hong_Kong", "AEST": "Australia/Sydney",
	"AEDT": "Australia/Sydney", "WET": "Europe/Lisbon", "EET": "Europe/Helsinki",
}

// loadTimezone loads an IANA time zone name, or returns a message and hint saying why it is not
// acceptable.
func loadTimezone(name string) (*time.Location, string, string) {
	hint := "use an IANA name like Asia/Seoul, Europe/Berlin or UTC"
	if name == "" {
		return nil, "timezone is empty", hint + ", or leave it out for UTC"
	}
	if name == "Local" {
		return nil, "timezone \"Local\" depends on the machine", hint
	}
	if name != "UTC" && name != "GMT" && tzAbbreviation.MatchString(name) {
		if iana, ok := tzAbbreviations[name]; ok {
			hint = fmt.Sprintf("use an IANA name, e.g. %s for %s", iana, name)
		}
		return nil, fmt.Sprintf("timezone %s is an abbreviation, not an IANA time zone name; abbreviations are ambiguous and some ignore daylight saving time", quoteShort(name)), hint
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		if strings.EqualFold(name, "utc") {
			hint = "write UTC"
		}
		return nil, fmt.Sprintf("unknown time zone %s", quoteShort(name)), hint
	}
	return loc, "", ""
}

// timeValue reads start or end: a date or an RFC 3339 time; without an offset it is read in loc.
func (p *parser) timeValue(pr pair, path string, loc *time.Location) *time.Time {
	const hint = "write a date like 2025-01-01 (read in the DAG's timezone) or an RFC 3339 time like 2025-01-01T09:00:00+09:00"
	v := resolve(pr.val)
	if v.Kind != yaml.ScalarNode {
		p.add(pr.val.Line, path, "must be a date, not "+describe(v), hint)
		return nil
	}
	t, err := parseTime(strings.TrimSpace(v.Value), loc)
	if err != nil {
		p.add(pr.val.Line, path, fmt.Sprintf("%s is not a date or time", quoteShort(v.Value)), hint)
		return nil
	}
	return &t
}

// parseTime reads a date or date-time; one without an offset is read in loc.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05 Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.In(loc), nil
		}
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04:05", time.DateTime, "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date: %q", s)
}

// defaults reads the defaults block.
func (p *parser) defaults(pr pair) TaskDefaults {
	var def TaskDefaults
	f, ok := p.fields(pr.val, pr.val.Line, "defaults", defaultsFields, "")
	if !ok {
		return def
	}
	if x, ok := get(f, "retries"); ok {
		if n, ok := p.integer(x, "defaults.retries", 0); ok {
			def.Retries = &n
		}
	}
	for _, fd := range []struct {
		name string
		dst  **time.Duration
	}{{"retry_delay", &def.RetryDelay}, {"max_retry_delay", &def.MaxRetryDelay}, {"timeout", &def.Timeout}} {
		if x, ok := get(f, fd.name); ok {
			if d, ok := p.duration(x, "defaults."+fd.name); ok {
				*fd.dst = &d
			}
		}
	}
	for _, fb := range []struct {
		name string
		dst  **bool
	}{{"retry_exponential_backoff", &def.RetryExponentialBackoff}, {"depends_on_past", &def.DependsOnPast}} {
		if x, ok := get(f, fb.name); ok {
			if b, ok := p.boolean(x, "defaults."+fb.name); ok {
				*fb.dst = &b
			}
		}
	}
	if x, ok := get(f, "resources"); ok {
		def.Resources, _ = p.resources(x, "defaults.resources")
	}
	if x, ok := get(f, "trigger_rule"); ok {
		def.TriggerRule, _ = p.triggerRule(x, "defaults.trigger_rule")
	}
	if x, ok := get(f, "alerts"); ok {
		def.Alerts = p.alerts(x, "defaults.alerts")
	}
	return def
}

func (p *parser) resources(pr pair, path string) (string, bool) {
	const hint = "name a worker class such as small, medium or large, or give a shape: {cpu: 2, memory: 4Gi}"
	if v := resolve(pr.val); v != nil && v.Kind == yaml.MappingNode {
		return p.shape(pr, path)
	}
	s, ok := p.str(pr, path, hint)
	if !ok {
		return "", false
	}
	if !resourcesPattern.MatchString(s) {
		p.add(pr.val.Line, path, fmt.Sprintf("resources %s is not a worker class name (a letter, then letters, digits, \"_\" or \"-\", at most 63)", quoteShort(s)), hint)
		return "", false
	}
	return s, true
}

// triggerRuleAliases maps Airflow's deprecated trigger rule names to the current ones.
var triggerRuleAliases = map[string]string{
	"none_failed_or_skipped": "none_failed_min_one_success",
	"dummy":                  "always",
}

func (p *parser) triggerRule(pr pair, path string) (string, bool) {
	s, ok := p.str(pr, path, "trigger rules: "+strings.Join(triggerRules, ", "))
	if !ok {
		return "", false
	}
	if !contains(triggerRules, s) {
		hint := suggest(s, triggerRules, "trigger rules")
		if alias, ok := triggerRuleAliases[s]; ok {
			hint = fmt.Sprintf("Airflow's %q is %q here", s, alias)
		}
		p.add(pr.val.Line, path, fmt.Sprintf("unknown trigger rule %s", quoteShort(s)), hint)
		return "", false
	}
	return s, true
}

// alerts reads an alerts block.
func (p *parser) alerts(pr pair, path string) *Alerts {
	f, ok := p.fields(pr.val, pr.val.Line, path, alertsFields, "")
	if !ok {
		return nil
	}
	a := &Alerts{}
	x, ok := get(f, "slack")
	if !ok {
		return a
	}
	spath := join(path, "slack")
	sf, ok := p.fields(x.val, x.val.Line, spath, slackFields, "")
	if !ok {
		return a
	}
	s := &SlackAlert{On: []string{"failure"}}
	if c, ok := get(sf, "channel"); ok {
		if ch, ok := p.str(c, join(spath, "channel"), "write channel: \"#data-alerts\" (quoted: # starts a YAML comment)"); ok {
			if strings.TrimSpace(ch) == "" {
				p.add(c.val.Line, join(spath, "channel"), "channel is empty", "write channel: \"#data-alerts\"")
			}
			s.Channel = ch
		}
	} else {
		p.add(x.key.Line, join(spath, "channel"), "channel is required",
			"add channel: \"#data-alerts\" (quoted: an unquoted # starts a YAML comment)")
	}
	if c, ok := get(sf, "connection"); ok {
		if conn, ok := p.str(c, join(spath, "connection"), "name a Slack connection id"); ok {
			if why := idProblem(conn); why != "" {
				p.add(c.val.Line, join(spath, "connection"), fmt.Sprintf("connection id %s %s", quoteShort(conn), why), idHint(conn))
			}
			s.Connection = conn
		}
	}
	if c, ok := get(sf, "on"); ok {
		onPath := join(spath, "on")
		on, nodes := p.stringList(c, onPath, "[failure, retry]")
		s.On = nil
		for i, ev := range on {
			if !contains(alertEvents, ev) {
				p.add(nodes[i].Line, onPath, fmt.Sprintf("unknown alert event %s", quoteShort(ev)), suggest(ev, alertEvents, "events"))
				continue
			}
			s.On = append(s.On, ev)
		}
		if v := resolve(c.val); v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			p.add(c.val.Line, onPath, "on is empty, so nothing is ever posted", "list events, e.g. on: [failure], or remove the alerts block")
		}
	}
	a.Slack = s
	return a
}

// tasks reads the tasks list into d.Tasks and returns what the later checks need about each.
func (p *parser) tasks(d *DAG, f map[string]pair, root *yaml.Node) []taskInfo {
	pr, ok := get(f, "tasks")
	if !ok {
		p.add(root.Line, "tasks", "tasks is required", "add a tasks list, e.g.\ntasks:\n  - id: hello\n    type: shell\n    with: {command: echo hello}")
		return nil
	}
	v := resolve(pr.val)
	if v.Kind != yaml.SequenceNode {
		p.add(pr.val.Line, "tasks", "must be a list of tasks, not "+describe(v), "write each task as a \"- id: ...\" item under tasks:")
		return nil
	}
	if len(v.Content) == 0 {
		p.add(pr.val.Line, "tasks", "a DAG needs at least one task", "add a task, e.g. - {id: hello, type: noop}")
		return nil
	}
	known := p.opts.TaskTypes
	if known == nil {
		known = BuiltinTaskTypes
	}
	var infos []taskInfo
	for i, item := range v.Content {
		t, info, ok := p.task(item, index("tasks", i), known)
		if !ok {
			continue
		}
		d.Tasks = append(d.Tasks, t)
		infos = append(infos, info)
	}
	for i := range d.Tasks {
		applyDefaults(&d.Tasks[i], infos[i].set, d.Defaults)
	}
	return infos
}

// task reads one task.
func (p *parser) task(n *yaml.Node, path string, known []string) (Task, taskInfo, bool) {
	info := taskInfo{path: path, line: n.Line, set: map[string]bool{}}
	t := Task{Line: n.Line}
	f, ok := p.fields(n, n.Line, path, taskFields, "a task")
	if !ok {
		return t, info, false
	}
	if x, ok := get(f, "id"); ok {
		info.idLine = x.val.Line
		if s, ok := p.str(x, join(path, "id"), "write id: my_task"); ok {
			if why := idProblem(s); why != "" {
				p.add(x.val.Line, join(path, "id"), fmt.Sprintf("task id %s %s", quoteShort(s), why), idHint(s))
			}
			t.ID = s
		}
	} else {
		p.add(n.Line, join(path, "id"), "task id is required", "add \"id: my_task\": letters, digits, \"_\", \"-\" and \".\"")
	}
	if x, ok := get(f, "type"); ok {
		if s, ok := p.str(x, join(path, "type"), "known types: "+strings.Join(known, ", ")); ok {
			if !contains(known, s) {
				p.add(x.val.Line, join(path, "type"), fmt.Sprintf("unknown task type %s", quoteShort(s)), suggest(s, known, "known types"))
			}
			t.Type = s
		}
	} else {
		p.add(n.Line, join(path, "type"), "task type is required", "add a type; known types: "+strings.Join(known, ", "))
	}
	if x, ok := get(f, "with"); ok {
		wpath := join(path, "with")
		if v := resolve(x.val); v.Kind != yaml.MappingNode {
			p.add(x.val.Line, wpath, "must be a mapping of the type's arguments, not "+describe(v), "write with: {name: value, ...}")
		} else {
			info.with = x.val
			if m, ok := p.value(v, wpath).(map[string]any); ok {
				t.With = m
			}
		}
	}
	if t.Type == "shell" {
		p.shellWith(&t, f, path, n.Line)
	} else if p.opts.CheckArgs != nil && t.Type != "" {
		for _, ap := range p.opts.CheckArgs(t.Type, t.With) {
			line, field := n.Line, join(path, "with")
			if info.with != nil {
				line = argLine(info.with, ap.Arg)
			}
			if ap.Arg != "" {
				field = join(field, ap.Arg)
			}
			p.add(line, field, ap.Msg, ap.Hint)
		}
	}
	if p.opts.CheckFiles != nil && t.Type != "" {
		p.argProblems(p.opts.CheckFiles(p.file, t.Type, t.With), n.Line, path, info.with)
	}
	if x, ok := get(f, "needs"); ok {
		t.Needs, info.needs = p.stringList(x, join(path, "needs"), "[extract, load]")
	}
	if x, ok := get(f, "trigger_rule"); ok {
		t.TriggerRule, info.set["trigger_rule"] = p.triggerRule(x, join(path, "trigger_rule"))
	}
	if x, ok := get(f, "retries"); ok {
		t.Retries, info.set["retries"] = p.integer(x, join(path, "retries"), 0)
	}
	for _, fd := range []struct {
		name string
		dst  *time.Duration
	}{
		{"retry_delay", &t.RetryDelay}, {"max_retry_delay", &t.MaxRetryDelay}, {"timeout", &t.Timeout},
		{"sla", &t.SLA}, {"poke_interval", &t.PokeInterval}, {"sensor_timeout", &t.SensorTimeout},
	} {
		if x, ok := get(f, fd.name); ok {
			*fd.dst, info.set[fd.name] = p.duration(x, join(path, fd.name))
		}
	}
	for _, fb := range []struct {
		name string
		dst  *bool
	}{
		{"retry_exponential_backoff", &t.RetryExponentialBackoff}, {"depends_on_past", &t.DependsOnPast},
		{"soft_fail", &t.SoftFail},
	} {
		if x, ok := get(f, fb.name); ok {
			*fb.dst, info.set[fb.name] = p.boolean(x, join(path, fb.name))
		}
	}
	if x, ok := get(f, "resources"); ok {
		t.Resources, info.set["resources"] = p.resources(x, join(path, "resources"))
	}
	if x, ok := get(f, "executor"); ok {
		const hint = "write executor: job to run the task in a Cloud Run job, or leave it out to use the type's default"
		if s, ok := p.str(x, join(path, "executor"), hint); ok {
			if s != "" && s != "job" {
				p.add(x.val.Line, join(path, "executor"), fmt.Sprintf("unknown executor %s", quoteShort(s)), hint)
			}
			t.Executor = s
		}
	}
	if x, ok := get(f, "alerts"); ok {
		t.Alerts = p.alerts(x, join(path, "alerts"))
	}
	if x, ok := get(f, "for_each"); ok {
		fpath := join(path, "for_each")
		switch v := resolve(x.val); {
		case v.Kind == yaml.SequenceNode:
			t.ForEach = p.value(v, fpath)
		case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && strings.Contains(v.Value, "{{"):
			t.ForEach = v.Value
			info.forEach = x.val
		default:
			p.add(x.val.Line, fpath, "must be a list or a template that yields one, not "+describe(v),
				"write for_each: [a, b, c] or for_each: '{{ xcom \"list_files\" }}'")
		}
	}
	return t, info, true
}

// shellWith checks the arguments of a shell task: command (required), env and cwd.
func (p *parser) shellWith(t *Task, f map[string]pair, path string, line int) {
	wpath := join(path, "with")
	x, ok := get(f, "with")
	if !ok {
		p.add(line, join(wpath, "command"), "a shell task needs with.command", "add with: {command: \"echo hello\"}")
		return
	}
	wf, ok := p.fields(x.val, x.val.Line, wpath, shellWithFields, "")
	if !ok {
		return
	}
	if c, ok := get(wf, "command"); !ok {
		p.add(x.key.Line, join(wpath, "command"), "a shell task needs with.command", "add command: \"echo hello\" under with")
	} else if v := resolve(c.val); v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		p.add(c.val.Line, join(wpath, "command"), "must be a string, not "+describe(v), "write the command as one string; use a | block for several lines")
	} else if strings.TrimSpace(v.Value) == "" {
		p.add(c.val.Line, join(wpath, "command"), "command is empty", "write the command to run")
	}
	if c, ok := get(wf, "cwd"); ok {
		if v := resolve(c.val); v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			p.add(c.val.Line, join(wpath, "cwd"), "must be a string, not "+describe(v), "write cwd: /path/to/dir")
		}
	}
	if c, ok := get(wf, "env"); ok {
		epath := join(wpath, "env")
		v := resolve(c.val)
		if v.Kind != yaml.MappingNode {
			p.add(c.val.Line, epath, "must be a mapping of variable names to values, not "+describe(v), "write env: {NAME: value}")
			return
		}
		env := map[string]any{}
		for _, e := range p.mapping(v, epath) {
			if !envNamePattern.MatchString(e.name) {
				p.add(e.key.Line, join(epath, e.name), fmt.Sprintf("%s is not a valid environment variable name", quoteShort(e.name)), "use letters, digits and \"_\", not starting with a digit")
			}
			ev := resolve(e.val)
			if ev == nil || ev.Kind != yaml.ScalarNode || ev.ShortTag() == "!!null" {
				p.add(e.val.Line, join(epath, e.name), "must be a string, not "+describe(ev), "quote the value")
				continue
			}
			env[e.name] = ev.Value
		}
		if t.With != nil {
			t.With["env"] = env
		}
	}
}

// applyDefaults fills the fields a task left unset from the DAG's defaults, then the built-in
// defaults.
func applyDefaults(t *Task, set map[string]bool, def TaskDefaults) {
	if !set["retries"] && def.Retries != nil {
		t.Retries = *def.Retries
	}
	if !set["retry_delay"] {
		t.RetryDelay = DefaultRetryDelay
		if def.RetryDelay != nil {
			t.RetryDelay = *def.RetryDelay
		}
	}
	if !set["retry_exponential_backoff"] && def.RetryExponentialBackoff != nil {
		t.RetryExponentialBackoff = *def.RetryExponentialBackoff
	}
	if !set["max_retry_delay"] && def.MaxRetryDelay != nil {
		t.MaxRetryDelay = *def.MaxRetryDelay
	}
	if !set["timeout"] && def.Timeout != nil {
		t.Timeout = *def.Timeout
	}
	if !set["depends_on_past"] && def.DependsOnPast != nil {
		t.DependsOnPast = *def.DependsOnPast
	}
	if !set["resources"] {
		t.Resources = DefaultResources
		if def.Resources != "" {
			t.Resources = def.Resources
		}
	}
	if t.Alerts == nil && def.Alerts != nil {
		t.Alerts = def.Alerts
	}
	if !set["trigger_rule"] {
		t.TriggerRule = DefaultTriggerRule
		if def.TriggerRule != "" {
			t.TriggerRule = def.TriggerRule
		}
	}
}

// argLine finds the line of an argument path ("a.b") under a with mapping: the deepest key
// that exists, else the mapping's own line.
func argLine(with *yaml.Node, arg string) int {
	line := with.Line
	n := resolve(with)
	for _, part := range strings.Split(arg, ".") {
		if n == nil || n.Kind != yaml.MappingNode || part == "" {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, next = n.Content[i].Line, resolve(n.Content[i+1])
				break
			}
		}
		n = next
	}
	return line
}
