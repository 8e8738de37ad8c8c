package render

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/updraft-dev/updraft/internal/dag"
)

// Time is a time in the DAG's timezone; it prints as RFC 3339, as Airflow prints datetimes.
type Time struct{ time.Time }

// String formats the time as RFC 3339 with its offset.
func (t Time) String() string { return t.Format(time.RFC3339) }

// MarshalJSON writes the time as an RFC 3339 string.
func (t Time) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// Run is what the context is made of for one attempt.
type Run struct {
	DagID, RunID, RunType, TaskID string
	Owner                         string
	TryNumber                     int
	Loc                           *time.Location
	LogicalDate                   time.Time
	IntervalStart, IntervalEnd    time.Time
	// PrevSuccessStart is the data interval start of the DAG's previous successful run.
	PrevSuccessStart *time.Time
	// Params are the DAG's params, with the run's conf laid over them.
	Params map[string]any
	Conf   map[string]any
	// Index and Item are set for an instance of a for_each task: .index and .item.
	Index *int
	Item  any
	// MaxTries is the number of the task's last try (.ti.max_tries).
	MaxTries int
	// LogURL is the UI page of this try (.ti.log_url): "" when the UI's address is unknown
	// (UPDRAFT_UI_URL unset).
	LogURL string
}

// Data returns the template context, with Airflow's names.
func Data(r Run) map[string]any {
	loc := r.Loc
	if loc == nil {
		loc = time.UTC
	}
	at := func(t time.Time) Time { return Time{t.In(loc)} }
	ds := r.LogicalDate.In(loc).Format("2006-01-02") // Airflow 2: the logical date's date (for a manual run too)
	var prev any
	if r.PrevSuccessStart != nil {
		prev = at(*r.PrevSuccessStart)
	}
	params := r.Params
	if params == nil {
		params = map[string]any{}
	}
	conf := r.Conf
	if conf == nil {
		conf = map[string]any{}
	}
	d := map[string]any{
		"ds":                               ds,
		"ds_nodash":                        strings.ReplaceAll(ds, "-", ""),
		"ts":                               at(r.LogicalDate).String(),
		"ts_nodash":                        at(r.LogicalDate).Format("20060102T150405"),
		"logical_date":                     at(r.LogicalDate),
		"data_interval_start":              at(r.IntervalStart),
		"data_interval_end":                at(r.IntervalEnd),
		"prev_data_interval_start_success": prev,
		"params":                           params,
		"dag_run":                          map[string]any{"run_id": r.RunID, "conf": conf, "run_type": r.RunType, "logical_date": at(r.LogicalDate)},
		"ti":                               map[string]any{"task_id": r.TaskID, "try_number": r.TryNumber, "max_tries": r.MaxTries, "log_url": r.LogURL},
		"dag":                              map[string]any{"dag_id": r.DagID, "owner": r.Owner, "timezone": loc.String()},
		"run_id":                           r.RunID,
	}
	if r.Index != nil {
		d["index"], d["item"] = *r.Index, r.Item
	}
	return d
}

// FormatDuration writes a duration as the `duration` function returns it: a Go duration,
// to the tenth of a second under a minute ("12.3s"), else to the second ("1h2m3s").
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Lookups are the functions that need the outside world. Each returns an error that names
// what was missing.
type Lookups struct {
	// Var returns a variable; ok is false when it is not set.
	Var func(name string) (value string, ok bool, err error)
	// Secret returns a secret's latest value.
	Secret func(name string) (string, error)
	// Conn returns a connection as a map (conn_type, host, login, password, schema, port, extra).
	Conn func(id string) (map[string]any, error)
	// XCom returns an upstream task's XCom value, decoded.
	XCom func(task string) (any, error)
	// Include returns a file of the DAG's bundle, by its path from the bundle root.
	Include func(path string) (string, error)
	// Duration returns how long an upstream task's last try ran; ok is false when it has
	// no finished try (skipped, upstream_failed).
	Duration func(task string) (d time.Duration, ok bool, err error)
}

// Funcs returns the template functions; the names match dag.TemplateFuncs.
func Funcs(l Lookups, loc *time.Location) template.FuncMap {
	if loc == nil {
		loc = time.UTC
	}
	m := template.FuncMap{
		"var": func(name string, def ...string) (string, error) {
			if l.Var == nil {
				return "", errors.New("variables are not available here")
			}
			v, ok, err := l.Var(name)
			switch {
			case err != nil:
				return "", err
			case ok:
				return v, nil
			case len(def) > 0:
				return def[0], nil
			}
			return "", fmt.Errorf("variable %q is not set: set it with `updraft vars set %s VALUE`, or give a default: {{ var %q \"default\" }}", name, name, name)
		},
		"secret": func(name string) (string, error) {
			if dag.ReservedSecret(name) {
				return "", dag.ReservedSecretError(name)
			}
			if l.Secret == nil {
				return "", errors.New("secrets are not available here")
			}
			return l.Secret(name)
		},
		"shq":     Shq,
		"bqIdent": BqIdent,
		"conn": func(id string) (map[string]any, error) {
			if l.Conn == nil {
				return nil, errors.New("connections are not available here")
			}
			return l.Conn(id)
		},
		"xcom": func(task string, key ...string) (any, error) {
			if l.XCom == nil {
				return nil, errors.New("XCom is not available here")
			}
			v, err := l.XCom(task)
			if err != nil || len(key) == 0 {
				return v, err
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("xcom %q %q: the XCom of %s is not an object, so it has no key %q", task, key[0], task, key[0])
			}
			kv, ok := obj[key[0]]
			if !ok {
				return nil, fmt.Errorf("xcom %q %q: no key %q in %s's XCom (keys: %s)", task, key[0], key[0], task, keys(obj))
			}
			return kv, nil
		},
		"duration": func(task string) (string, error) {
			if l.Duration == nil {
				return "", errors.New("duration is not available here")
			}
			d, ok, err := l.Duration(task)
			if err != nil || !ok {
				return "", err
			}
			return FormatDuration(d), nil
		},
		"include": func(path string) (string, error) {
			if l.Include == nil {
				return "", errors.New("include: this DAG was deployed without its folder (no bundle)")
			}
			return l.Include(path)
		},
		"json": func(s string) (any, error) {
			var v any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				return nil, fmt.Errorf("json: %v", err)
			}
			return Numbers(v), nil
		},
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		// Comparisons that take numbers of any kind: a count from XCom (a JSON number)
		// compares with a literal 0 as in Jinja, where Go's builtins refuse float vs int.
		"eq": func(a any, bs ...any) (bool, error) {
			for _, b := range bs {
				if c, ok := compare(a, b); ok && c == 0 || !ok && fmt.Sprint(a) == fmt.Sprint(b) && sameKind(a, b) {
					return true, nil
				}
			}
			return false, nil
		},
		"ne": func(a, b any) (bool, error) {
			c, ok := compare(a, b)
			return !(ok && c == 0 || !ok && fmt.Sprint(a) == fmt.Sprint(b) && sameKind(a, b)), nil
		},
		"lt":  ordered(func(c int) bool { return c < 0 }),
		"le":  ordered(func(c int) bool { return c <= 0 }),
		"gt":  ordered(func(c int) bool { return c > 0 }),
		"ge":  ordered(func(c int) bool { return c >= 0 }),
		"add": func(t any, d string) (Time, error) { return shift(t, d, loc, 1) },
		"sub": func(t any, d string) (Time, error) { return shift(t, d, loc, -1) },
		"format": func(t any, layout string) (string, error) {
			tt, err := toTime(t, loc)
			return tt.Format(layout), err
		},
		"inTZ": func(t any, zone string) (Time, error) {
			z, err := time.LoadLocation(zone)
			if err != nil {
				return Time{}, fmt.Errorf("inTZ: unknown timezone %q (use an IANA name like Asia/Seoul)", zone)
			}
			tt, err := toTime(t, loc)
			return Time{tt.In(z)}, err
		},
		"ds": func(t any) (string, error) {
			tt, err := toTime(t, loc)
			return tt.Format("2006-01-02"), err
		},
		"dateAdd": func(ds string, days int) (string, error) {
			d, err := time.Parse("2006-01-02", ds)
			if err != nil {
				return "", fmt.Errorf("dateAdd: %q is not a date like 2025-01-31", ds)
			}
			return d.AddDate(0, 0, days).Format("2006-01-02"), nil
		},
	}
	return m
}

func keys(m map[string]any) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// toTime accepts a Time, a time.Time, an RFC 3339 string or a date.
func toTime(v any, loc *time.Location) (time.Time, error) {
	switch t := v.(type) {
	case Time:
		return t.Time, nil
	case time.Time:
		return t.In(loc), nil
	case string:
		if tt, err := time.Parse(time.RFC3339, t); err == nil {
			return tt.In(loc), nil
		}
		if tt, err := time.ParseInLocation("2006-01-02", t, loc); err == nil {
			return tt, nil
		}
		return time.Time{}, fmt.Errorf("%q is not a time (RFC 3339) or a date (2025-01-31)", t)
	}
	return time.Time{}, fmt.Errorf("%v (%T) is not a time", v, v)
}

// shift adds a duration like "2h", "-30m" or "1d" (days follow the calendar in the DAG's
// timezone, so a day across a DST change is 23 or 25 hours).
func shift(v any, d string, loc *time.Location, sign int) (Time, error) {
	t, err := toTime(v, loc)
	if err != nil {
		return Time{}, err
	}
	if days, ok := strings.CutSuffix(d, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return Time{}, fmt.Errorf("%q is not a number of days like 1d", d)
		}
		return Time{t.AddDate(0, 0, sign*n)}, nil
	}
	dur, err := dag.ParseDuration(d)
	if err != nil {
		return Time{}, fmt.Errorf("%q is not a duration like 2h or 1d", d)
	}
	return Time{t.Add(time.Duration(sign) * dur)}, nil
}

// Render renders every string inside v (a task's with: maps, lists, scalars) as a template
// and returns the rendered copy. A string without "{{" is kept as it is. Errors name the
// argument (e.g. "with.sql") and the template's line.
func Render(v any, data map[string]any, funcs template.FuncMap) (any, error) {
	return render(v, "with", data, funcs)
}

// Value renders a template that stands for a value rather than text, such as a for_each
// list: a template that is one action ({{ xcom "list" }}, {{ .params.tables }}) yields the
// action's value itself; any other template yields its text, decoded as JSON when it is JSON.
func Value(tmpl, path string, data map[string]any, funcs template.FuncMap) (any, error) {
	text := tmpl
	if inner, ok := singleAction(tmpl); ok {
		text = "{{ toJSON (" + inner + ") }}"
	}
	out, err := render(text, path, data, funcs)
	if err != nil {
		return nil, err
	}
	s := out.(string)
	var v any
	if json.Unmarshal([]byte(s), &v) == nil {
		return v, nil
	}
	return s, nil
}

// singleAction returns X for a template that is exactly "{{ X }}" (trim markers allowed).
func singleAction(tmpl string) (string, bool) {
	t := strings.TrimSpace(tmpl)
	if !strings.HasPrefix(t, "{{") || !strings.HasSuffix(t, "}}") || strings.Count(t, "{{") != 1 || strings.Count(t, "}}") != 1 {
		return "", false
	}
	inner := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t[2:len(t)-2], "-"), "-"))
	if inner == "" || strings.HasPrefix(inner, "/*") {
		return "", false
	}
	for _, kw := range []string{"if ", "range ", "with ", "define ", "block ", "template ", "end", "else"} {
		if strings.HasPrefix(inner, kw) {
			return "", false
		}
	}
	return inner, true
}

func render(v any, path string, data map[string]any, funcs template.FuncMap) (any, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return x, nil
		}
		t, err := template.New(path).Funcs(funcs).Option("missingkey=error").Parse(x)
		if err != nil {
			return nil, fmt.Errorf("template %v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("template %v", err)
		}
		return buf.String(), nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := render(e, path+"."+k, data, funcs)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := render(e, fmt.Sprintf("%s[%d]", path, i), data, funcs)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// Number is a JSON number in a template. It prints as written (174096000, 1.5), not in Go's
// exponent form (1.74096e+08), and formats with printf's verbs like a float64 (%d as an
// integer), so ids and amounts read from XCom render as Jinja would render them.
type Number float64

// Format prints the number for fmt verbs.
func (n Number) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's':
		fmt.Fprint(f, strconv.FormatFloat(float64(n), 'f', -1, 64))
	case 'd':
		fmt.Fprintf(f, fmt.FormatString(f, verb), int64(n))
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), float64(n))
	}
}

// MarshalJSON writes the number as JSON.
func (n Number) MarshalJSON() ([]byte, error) { return json.Marshal(float64(n)) }

// Numbers returns v (decoded JSON) with every float64 made a Number.
func Numbers(v any) any {
	switch x := v.(type) {
	case float64:
		return Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = Numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = Numbers(e)
		}
	}
	return v
}

// number reads v as a number when it is one (any int, uint or float kind, or Number).
func number(v any) (float64, bool) {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(r.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(r.Uint()), true
	case reflect.Float32, reflect.Float64:
		return r.Float(), true
	}
	return 0, false
}

// compare orders two numbers, or two strings; ok is false for anything else.
func compare(a, b any) (int, bool) {
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return cmp.Compare(x, y), true
		}
		return 0, false
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}

func sameKind(a, b any) bool { return reflect.TypeOf(a) == reflect.TypeOf(b) }

func ordered(want func(int) bool) func(a, b any) (bool, error) {
	return func(a, b any) (bool, error) {
		c, ok := compare(a, b)
		if !ok {
			return false, fmt.Errorf("can't order %v (%T) and %v (%T): compare numbers with numbers, strings with strings", a, a, b, b)
		}
		return want(c), nil
	}
}
