package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/updraft-dev/updraft/tasks"
)

// uriHint is how a connection URI looks, for error messages.
const uriHint = "scheme://login:password@host:port/schema?param=value, with special characters in login and password url-encoded"

// parseConn reads a connection secret: Airflow's JSON format if it starts with "{", else an
// Airflow connection URI. Its errors complete "the secret NAME ..." and never quote the value.
func parseConn(id, raw string) (tasks.Connection, error) {
	var (
		c   tasks.Connection
		err error
	)
	if s := strings.TrimSpace(raw); strings.HasPrefix(s, "{") {
		c, err = parseConnJSON(s)
	} else {
		c, err = parseConnURI(s)
	}
	if err != nil {
		return tasks.Connection{}, err
	}
	c.ID = id
	c.Type = normalizeConnType(c.Type)
	return c, nil
}

// normalizeConnType does what Airflow's Connection._normalize_conn_type does.
func normalizeConnType(t string) string {
	if t == "postgresql" {
		return "postgres"
	}
	return strings.ReplaceAll(t, "-", "_")
}

func parseConnJSON(s string) (tasks.Connection, error) {
	var j struct {
		ConnType string          `json:"conn_type"`
		Host     string          `json:"host"`
		Login    string          `json:"login"`
		Password string          `json:"password"`
		Schema   string          `json:"schema"`
		Port     json.RawMessage `json:"port"`
		Extra    json.RawMessage `json:"extra"`
	}
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return tasks.Connection{}, fmt.Errorf("is not a valid JSON connection (%v); want "+
			`{"conn_type": ..., "host": ..., "login": ..., "password": ..., "schema": ..., "port": ..., "extra": {...}}`, err)
	}
	c := tasks.Connection{Type: j.ConnType, Host: j.Host, Login: j.Login, Password: j.Password, Schema: j.Schema}
	var err error
	if c.Port, err = jsonPort(j.Port); err != nil {
		return tasks.Connection{}, err
	}
	if c.Extra, err = jsonExtra(j.Extra); err != nil {
		return tasks.Connection{}, err
	}
	return c, nil
}

// jsonPort accepts a number, a string of digits, null or nothing, as Airflow does.
func jsonPort(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	if s == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 || p > 65535 {
		return 0, errors.New(`has a "port" that is not a port number`)
	}
	return p, nil
}

// jsonExtra accepts an object or a string holding a JSON object (Airflow stores it so).
func jsonExtra(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		raw = json.RawMessage(s)
	}
	var extra map[string]any
	if err := json.Unmarshal(raw, &extra); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, errors.New(`has an "extra" that is neither a JSON object nor a string holding one`)
	}
	return extra, nil
}

// parseConnURI follows Airflow's Connection._parse_from_uri: the scheme is the conn_type
// (it may hold "_", which URLs do not allow, so it is cut off by hand), login, password, host
// and schema are url-decoded, a second scheme (http://https://host) makes the host keep its
// protocol, and the query goes to Extra, or all of Extra as JSON in __extra__.
func parseConnURI(s string) (tasks.Connection, error) {
	bad := func(why string) (tasks.Connection, error) {
		return tasks.Connection{}, fmt.Errorf("is neither a JSON connection nor an Airflow connection URI (%s): %s", uriHint, why)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case !ok || scheme == "":
		return bad("it has no scheme://")
	case strings.Count(s, "://") > 2:
		return bad(`it has more than two "://"`)
	}
	protocol := ""
	if strings.Contains(rest, "://") {
		protocol, rest, _ = strings.Cut(rest, "://")
		if strings.ContainsAny(protocol, "@:/") {
			return bad("a host with a protocol (scheme://protocol://host) cannot have login or password")
		}
	}
	u, err := url.Parse("//" + rest)
	if err != nil {
		// url's errors quote the input, which holds the password: say no more than this.
		return bad("it does not parse as a URL")
	}
	if u.Fragment != "" || strings.HasSuffix(rest, "#") {
		return bad(`it contains "#"`)
	}
	c := tasks.Connection{Type: scheme, Host: u.Hostname(), Schema: strings.TrimPrefix(u.Path, "/")}
	if protocol != "" {
		c.Host = protocol + "://" + c.Host
	}
	if u.User != nil {
		c.Login = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil || c.Port > 65535 {
			return bad("the port is not a port number")
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return bad("its query does not parse")
		}
		if e, ok := q["__extra__"]; ok {
			if json.Unmarshal([]byte(e[len(e)-1]), &c.Extra) != nil || c.Extra == nil {
				return tasks.Connection{}, errors.New(`has an "__extra__" parameter that is not a JSON object`)
			}
		} else {
			c.Extra = map[string]any{}
			for k, vs := range q {
				c.Extra[k] = vs[len(vs)-1] // like Airflow's dict(parse_qsl(...)): the last one wins
			}
		}
	}
	return c, nil
}
