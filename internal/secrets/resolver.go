package secrets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/taskrun"
	"github.com/updraft-dev/updraft/tasks"
)

const (
	// connPrefix starts the name of a connection's secret: updraft-connections-ID.
	connPrefix = "updraft-connections-"
	// varPrefix starts the name of a variable's override secret: updraft-variables-NAME.
	varPrefix = "updraft-variables-"
)

var (
	_ tasks.Resolver         = (*Resolver)(nil)
	_ taskrun.SecretResolver = (*Resolver)(nil)
)

// Resolver resolves secrets and connections for one attempt, caching what it read, and
// records every value it returned so the caller can mask them. It is safe for concurrent use.
type Resolver struct {
	c *Client

	mu      sync.Mutex
	secrets map[string]string
	conns   map[string]tasks.Connection
	vars    map[string]variable
	values  []string
	seen    map[string]bool
}

type variable struct {
	value string
	ok    bool
}

// NewResolver returns an empty resolver reading from c.
func NewResolver(c *Client) *Resolver {
	return &Resolver{
		c:       c,
		secrets: map[string]string{},
		conns:   map[string]tasks.Connection{},
		vars:    map[string]variable{},
		seen:    map[string]bool{},
	}
}

// record remembers values to mask; the caller holds r.mu. Empty values are skipped.
func (r *Resolver) record(values ...string) {
	for _, v := range values {
		if v != "" && !r.seen[v] {
			r.seen[v] = true
			r.values = append(r.values, v)
		}
	}
}

// Secret returns the latest value of a secret (see Client.Access for the errors).
// Updraft's own secrets (dag.ReservedSecret) are refused: no task may read them.
func (r *Resolver) Secret(ctx context.Context, name string) (string, error) {
	if dag.ReservedSecret(name) {
		return "", dag.ReservedSecretError(name)
	}
	r.mu.Lock()
	v, ok := r.secrets[name]
	r.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := r.c.Access(ctx, name)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[name] = v
	r.record(v)
	return v, nil
}

// Conn reads the secret "updraft-connections-<id>" (like Airflow's Secret Manager backend's
// "airflow-connections-<id>"), either JSON ({"conn_type","host","login","password","schema",
// "port","extra"}, Airflow's JSON connection format; "extra" may be an object or a JSON
// string) or an Airflow connection URI (scheme://login:password@host:port/schema?extra=params,
// url-decoded; conn_type from the scheme with "-" turned into "_"; query parameters go to
// Extra, or all of Extra as JSON in __extra__). A missing secret gives an error wrapping
// ErrNotFound that names the connection and the secret to create.
func (r *Resolver) Conn(ctx context.Context, id string) (tasks.Connection, error) {
	r.mu.Lock()
	conn, ok := r.conns[id]
	r.mu.Unlock()
	if ok {
		conn.Extra = maps.Clone(conn.Extra)
		return conn, nil
	}
	name := connPrefix + id
	if !nameRE.MatchString(name) {
		return tasks.Connection{}, fmt.Errorf("secrets: connection %q: its secret name %q is invalid: use letters, digits, - and _ in connection ids", id, name)
	}
	raw, err := r.c.Access(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return tasks.Connection{}, fmt.Errorf("%w: connection %q: create the secret %s in project %s "+
			"(`updraft secrets set %s`, value as JSON or an Airflow connection URI)", ErrNotFound, id, name, r.c.project, name)
	}
	if err != nil {
		return tasks.Connection{}, fmt.Errorf("connection %q: %w", id, err)
	}
	r.mu.Lock()
	r.record(raw) // before parsing: mask it even if it does not parse
	r.mu.Unlock()
	conn, err = parseConn(id, raw)
	if err != nil {
		return tasks.Connection{}, fmt.Errorf("secrets: connection %q: the secret %s %w", id, name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[id] = conn
	r.record(conn.Password)
	conn.Extra = maps.Clone(conn.Extra)
	return conn, nil
}

// Variable returns the override secret "updraft-variables-<name>" if it exists: ok is false
// when it does not (or when name cannot be part of a secret name); other errors are returned.
func (r *Resolver) Variable(ctx context.Context, name string) (value string, ok bool, err error) {
	r.mu.Lock()
	v, cached := r.vars[name]
	r.mu.Unlock()
	if cached {
		return v.value, v.ok, nil
	}
	secret := varPrefix + name
	if nameRE.MatchString(secret) {
		v.value, err = r.c.Access(ctx, secret)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return "", false, fmt.Errorf("variable %q: %w", name, err)
		default:
			v.ok = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vars[name] = v
	r.record(v.value)
	return v.value, v.ok, nil
}

// Values returns every secret value resolved so far (secrets, variable overrides, and for
// connections their password and full secret text), for masking, in the order first seen.
// Empty values are left out. It is safe for concurrent use.
func (r *Resolver) Values() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.values...)
}
