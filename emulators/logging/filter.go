package logemu

import (
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	ltype "google.golang.org/genproto/googleapis/logging/type"
)

// matcher reports whether an entry matches a filter.
type matcher func(*loggingpb.LogEntry) bool

// token kinds.
const (
	tEOF = iota
	tLParen
	tRParen
	tOp     // = != < <= > >= :
	tString // a quoted string, unescaped
	tWord   // a bare word (a field path's name, AND, OR, NOT, a bare value)
	tDot
)

type token struct {
	kind int
	text string
	pos  int // byte offset in the filter, for errors
}

// lex splits a filter into tokens.
func lex(f string) ([]token, error) {
	var out []token
	for i := 0; i < len(f); {
		c := f[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i})
			i++
		case c == '.':
			out = append(out, token{tDot, ".", i})
			i++
		case c == '=' || c == ':':
			out = append(out, token{tOp, string(c), i})
			i++
		case c == '!' || c == '<' || c == '>':
			if i+1 < len(f) && f[i+1] == '=' {
				out = append(out, token{tOp, f[i : i+2], i})
				i += 2
			} else if c == '!' {
				return nil, fmt.Errorf("at offset %d: '!' must be followed by '='", i)
			} else {
				out = append(out, token{tOp, string(c), i})
				i++
			}
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(f) && f[j] != '"'; j++ {
				if f[j] == '\\' {
					j++
					if j == len(f) {
						break
					}
					switch f[j] {
					case '"', '\\':
						b.WriteByte(f[j])
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					default:
						return nil, fmt.Errorf("at offset %d: unknown escape \\%c in a quoted string", j-1, f[j])
					}
					continue
				}
				b.WriteByte(f[j])
			}
			if j >= len(f) {
				return nil, fmt.Errorf("at offset %d: the quoted string is not closed", i)
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		default:
			j := i
			for j < len(f) && !strings.ContainsRune(" \t\n\r().=:!<>\"", rune(f[j])) {
				j++
			}
			out = append(out, token{tWord, f[i:j], i})
			i = j
		}
	}
	return append(out, token{tEOF, "", len(f)}), nil
}

// parser is a recursive-descent parser over the tokens.
type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *parser) keyword(k string) bool {
	t := p.peek()
	return t.kind == tWord && t.text == k
}

// parseFilter reads a filter; "" matches everything.
func parseFilter(f string) (matcher, error) {
	toks, err := lex(f)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tEOF {
		return func(*loggingpb.LogEntry) bool { return true }, nil
	}
	m, err := p.and()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("at offset %d: unexpected %q", t.pos, t.text)
	}
	return m, nil
}

// and is or-terms joined by AND or by juxtaposition.
func (p *parser) and() (matcher, error) {
	var ms []matcher
	for {
		m, err := p.or()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if p.keyword("AND") {
			p.next()
			continue
		}
		if t := p.peek(); t.kind == tEOF || t.kind == tRParen {
			break
		}
	}
	return func(e *loggingpb.LogEntry) bool {
		for _, m := range ms {
			if !m(e) {
				return false
			}
		}
		return true
	}, nil
}

func (p *parser) or() (matcher, error) {
	ms := []matcher{}
	for {
		m, err := p.not()
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if !p.keyword("OR") {
			break
		}
		p.next()
	}
	return func(e *loggingpb.LogEntry) bool {
		for _, m := range ms {
			if m(e) {
				return true
			}
		}
		return false
	}, nil
}

func (p *parser) not() (matcher, error) {
	if p.keyword("NOT") {
		p.next()
		m, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(e *loggingpb.LogEntry) bool { return !m(e) }, nil
	}
	if p.peek().kind == tLParen {
		open := p.next()
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRParen {
			return nil, fmt.Errorf("at offset %d: the parenthesis opened at offset %d is not closed", t.pos, open.pos)
		}
		return m, nil
	}
	return p.comparison()
}

// comparison is FIELD OP VALUE.
func (p *parser) comparison() (matcher, error) {
	start := p.peek()
	var path []string
	for {
		t := p.next()
		if t.kind != tWord && t.kind != tString || t.kind == tWord && (t.text == "AND" || t.text == "OR" || t.text == "NOT") {
			return nil, fmt.Errorf("at offset %d: want a field name, got %q", t.pos, t.text)
		}
		path = append(path, t.text)
		if p.peek().kind != tDot {
			break
		}
		p.next()
	}
	op := p.next()
	if op.kind != tOp {
		return nil, fmt.Errorf("at offset %d: want a comparison operator after %s, got %q", op.pos, strings.Join(path, "."), op.text)
	}
	val := p.next()
	if val.kind != tString && val.kind != tWord {
		return nil, fmt.Errorf("at offset %d: want a value after %s%s, got %q", val.pos, strings.Join(path, "."), op.text, val.text)
	}
	get, kind, err := field(path)
	if err != nil {
		return nil, fmt.Errorf("at offset %d: %v", start.pos, err)
	}
	switch kind {
	case kindTime:
		want, err := time.Parse(time.RFC3339Nano, val.text)
		if err != nil {
			return nil, fmt.Errorf("at offset %d: timestamp %q is not an RFC 3339 time", val.pos, val.text)
		}
		return func(e *loggingpb.LogEntry) bool {
			return compare(e.GetTimestamp().AsTime().Compare(want), op.text, e.GetTimestamp().AsTime().String(), want.String())
		}, nil
	case kindSeverity:
		want, ok := ltype.LogSeverity_value[strings.ToUpper(val.text)]
		if !ok {
			return nil, fmt.Errorf("at offset %d: %q is not a severity", val.pos, val.text)
		}
		return func(e *loggingpb.LogEntry) bool {
			got := int32(e.GetSeverity())
			return compare(cmpInt(got, want), op.text, e.GetSeverity().String(), val.text)
		}, nil
	}
	return func(e *loggingpb.LogEntry) bool {
		got, ok := get(e)
		if !ok {
			return op.text == "!="
		}
		return compare(strings.Compare(got, val.text), op.text, got, val.text)
	}, nil
}

func cmpInt(a, b int32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compare applies op to a comparison's result c (and, for ':', to the strings).
func compare(c int, op, got, want string) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case ":":
		return strings.Contains(strings.ToLower(got), strings.ToLower(want))
	}
	return false
}

const (
	kindString = iota
	kindTime
	kindSeverity
)

// field returns how to read a field of an entry.
func field(path []string) (func(*loggingpb.LogEntry) (string, bool), int, error) {
	name := strings.Join(path, ".")
	switch {
	case len(path) == 1 && path[0] == "timestamp":
		return nil, kindTime, nil
	case len(path) == 1 && path[0] == "severity":
		return nil, kindSeverity, nil
	case len(path) == 1 && path[0] == "logName":
		return func(e *loggingpb.LogEntry) (string, bool) { return e.GetLogName(), true }, kindString, nil
	case len(path) == 1 && path[0] == "insertId":
		return func(e *loggingpb.LogEntry) (string, bool) { return e.GetInsertId(), true }, kindString, nil
	case len(path) == 1 && path[0] == "textPayload":
		return func(e *loggingpb.LogEntry) (string, bool) {
			x, ok := e.GetPayload().(*loggingpb.LogEntry_TextPayload)
			return x.TextPayload, ok
		}, kindString, nil
	case len(path) == 2 && path[0] == "resource" && path[1] == "type":
		return func(e *loggingpb.LogEntry) (string, bool) { return e.GetResource().GetType(), e.GetResource() != nil }, kindString, nil
	case len(path) == 3 && path[0] == "resource" && path[1] == "labels":
		return func(e *loggingpb.LogEntry) (string, bool) {
			v, ok := e.GetResource().GetLabels()[path[2]]
			return v, ok
		}, kindString, nil
	case len(path) == 2 && path[0] == "labels":
		return func(e *loggingpb.LogEntry) (string, bool) { v, ok := e.GetLabels()[path[1]]; return v, ok }, kindString, nil
	case len(path) == 2 && path[0] == "jsonPayload":
		return func(e *loggingpb.LogEntry) (string, bool) {
			v, ok := e.GetJsonPayload().GetFields()[path[1]]
			if !ok {
				return "", false
			}
			return fmt.Sprint(v.AsInterface()), true
		}, kindString, nil
	}
	return nil, 0, fmt.Errorf("field %s is not one the stand-in filters on (logName, severity, timestamp, insertId, textPayload, resource.type, resource.labels.KEY, labels.KEY, jsonPayload.KEY)", name)
}
