package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/url"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"st":         styleOf,
	"sq":         square,
	"pill":       pill,
	"fill":       fillClass,
	"at":         timeTag,
	"clock":      clockTag,
	"dur":        duration,
	"pretty":     prettyJSON,
	"path":       url.PathEscape,
	"query":      url.QueryEscape,
	"unfinished": unfinished,
	"short":      shortLabel,
	"add":        func(a, b int) int { return a + b },
	"mapcount":   func(p *int) int { return deref(p) },
	"join":       strings.Join,
	"shortver":   func(v string) string { return v[:min(len(v), 12)] },
	"percent": func(part, total int) int {
		if total <= 0 {
			return 0
		}
		return part * 100 / total
	},
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// location loads a DAG's timezone, UTC when it does not load.
func location(tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.UTC
	}
	return loc
}

// timeTag renders t (a time.Time or *time.Time) in the timezone tz as a <time> element
// whose datetime is UTC and whose title says the UTC time, so hovering shows it.
func timeTag(v any, tz string) template.HTML {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return `<span class="muted">–</span>`
		}
		t = *x
	default:
		return template.HTML(html.EscapeString(fmt.Sprint(v)))
	}
	if t.IsZero() {
		return `<span class="muted">–</span>`
	}
	loc := location(tz)
	local := t.In(loc).Format("2006-01-02 15:04:05 MST")
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="UTC %s">%s</time>`,
		t.UTC().Format(time.RFC3339), t.UTC().Format("2006-01-02 15:04:05"), html.EscapeString(local)))
}

// clockTag renders a log line's time of day in the timezone tz with the zone named
// ("15:58:49.432 KST"), the UTC instant on hover.
func clockTag(t time.Time, tz string) template.HTML {
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="UTC %s">%s</time>`,
		t.UTC().Format(time.RFC3339Nano), t.UTC().Format("2006-01-02 15:04:05.000"), html.EscapeString(t.In(location(tz)).Format("15:04:05.000 MST"))))
}

// duration is end - start, or "" when either is missing (a *time.Time nil).
func duration(start, end *time.Time) string {
	if start == nil || end == nil {
		return ""
	}
	return humanDuration(end.Sub(*start))
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// prettyJSON indents a JSON document; anything that is not JSON is returned as is.
func prettyJSON(v any) string {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	case string:
		raw = []byte(x)
	default:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	// Decode and re-encode without HTML escaping, so "<", ">" and "&" read as themselves
	// (the template escapes the output); numbers stay as written.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return string(raw)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return string(raw)
	}
	return strings.TrimRight(out.String(), "\n")
}

// square renders a state as a square with its symbol and a title (the state's words, then
// extra); a link when href is set. The symbol is aria-hidden: screen readers get the
// title's words through aria-label.
func square(state, href, extra string) template.HTML {
	s := styleOf(state)
	title := s.Label
	if extra != "" {
		title = extra + ": " + s.Label
	}
	t := html.EscapeString(title)
	if href == "" {
		return template.HTML(fmt.Sprintf(`<span class="sq %s" title="%s" role="img" aria-label="%s"><span aria-hidden="true">%s</span></span>`,
			s.Class, t, t, html.EscapeString(s.Symbol)))
	}
	return template.HTML(fmt.Sprintf(`<a class="sq %s" href="%s" title="%s" aria-label="%s" data-state="%s"><span aria-hidden="true">%s</span></a>`,
		s.Class, html.EscapeString(href), t, t, html.EscapeString(state), html.EscapeString(s.Symbol)))
}

// pill renders a state as a labelled badge: symbol and the state's words.
func pill(state string) template.HTML {
	s := styleOf(state)
	return template.HTML(fmt.Sprintf(`<span class="pill %s" data-state="%s"><span class="sym" aria-hidden="true">%s</span>%s</span>`,
		s.Class, html.EscapeString(state), html.EscapeString(s.Symbol), html.EscapeString(s.Label)))
}

// fillClass is the SVG fill class of a state's colour ("st-success" → "success").
func fillClass(state string) string { return strings.TrimPrefix(styleOf(state).Class, "st-") }
