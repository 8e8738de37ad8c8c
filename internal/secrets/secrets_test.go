package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
	"github.com/updraft-dev/updraft/tasks"
)

var (
	standIn  *smemu.Server
	projects atomic.Int64 // keeps projects unique across -count runs
)

func TestMain(m *testing.M) {
	s, err := smemu.Start("", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	standIn = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// bundle is what a test works with: a client on the stand-in, in the test's own project.
type bundle struct {
	ctx     context.Context
	client  *Client
	project string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	project := fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), projects.Add(1))
	getenv := func(k string) string {
		if k == emulatorHostEnv {
			return standIn.Addr
		}
		return ""
	}
	c, err := Open(t.Context(), project, getenv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &bundle{ctx: t.Context(), client: c, project: project}
}

func (b *bundle) set(t *testing.T, name, value string) {
	t.Helper()
	if err := b.client.Set(b.ctx, name, value); err != nil {
		t.Fatal(err)
	}
}

func TestEmulatorHostEnvMatchesTheStandIn(t *testing.T) {
	if emulatorHostEnv != smemu.EnvVar {
		t.Fatalf("emulatorHostEnv = %q, smemu.EnvVar = %q", emulatorHostEnv, smemu.EnvVar)
	}
}

func TestSetAccessList(t *testing.T) {
	b := setup(t)
	b.set(t, "db-password", "first")
	b.set(t, "db-password", "second") // a new version of the same secret
	b.set(t, "api_key", "k")
	got, err := b.client.Access(b.ctx, "db-password")
	if err != nil || got != "second" {
		t.Fatalf("Access = %q, %v; want the latest version", got, err)
	}
	names, err := b.client.List(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api_key", "db-password"}; !slices.Equal(names, want) {
		t.Fatalf("List = %v, want %v", names, want)
	}
	if err := b.client.Set(b.ctx, "empty", ""); err == nil {
		t.Error("Set stored an empty value")
	}
	if err := b.client.Set(b.ctx, "bad.name", "v"); err == nil || !strings.Contains(err.Error(), "bad.name") {
		t.Errorf("Set with an invalid name: %v", err)
	}
}

func TestAccessMissing(t *testing.T) {
	b := setup(t)
	_, err := b.client.Access(b.ctx, "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{`"nope"`, b.project, "updraft secrets set nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestAccessDisabled(t *testing.T) {
	b := setup(t)
	b.set(t, "rotated", "old")
	b.set(t, "rotated", "new")
	_, err := b.client.sm.DisableSecretVersion(b.ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: b.client.secretName("rotated") + "/versions/2"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.client.Access(b.ctx, "rotated")
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("err = %v, want a disabled-version error", err)
	}
}

func TestResolverSecret(t *testing.T) {
	b := setup(t)
	b.set(t, "token", "tok-1")
	r := NewResolver(b.client)
	got, err := r.Secret(b.ctx, "token")
	if err != nil || got != "tok-1" {
		t.Fatalf("Secret = %q, %v", got, err)
	}
	b.set(t, "token", "tok-2")
	if got, _ := r.Secret(b.ctx, "token"); got != "tok-1" {
		t.Errorf("Secret after a new version = %q, want the attempt's cached %q", got, "tok-1")
	}
	if _, err := r.Secret(b.ctx, "missing"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing secret: %v", err)
	}
	if got := r.Values(); !slices.Equal(got, []string{"tok-1"}) {
		t.Errorf("Values = %q", got)
	}
}

func TestResolverConnJSON(t *testing.T) {
	b := setup(t)
	b.set(t, "updraft-connections-warehouse", `{"conn_type": "postgres", "host": "db", "login": "etl", "password": "pw-json", "port": 5432, "schema": "wh", "extra": "{\"sslmode\": \"require\"}"}`)
	r := NewResolver(b.client)
	c, err := r.Conn(b.ctx, "warehouse")
	if err != nil {
		t.Fatal(err)
	}
	want := tasks.Connection{ID: "warehouse", Type: "postgres", Host: "db", Login: "etl", Password: "pw-json", Port: 5432, Schema: "wh",
		Extra: map[string]any{"sslmode": "require"}}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Fatalf("Conn = %+v, want %+v", c, want)
	}
	c.Extra["sslmode"] = "changed by the caller"
	if again, _ := r.Conn(b.ctx, "warehouse"); again.Extra["sslmode"] != "require" {
		t.Errorf("the cached connection was changed through a returned Extra")
	}
	if vals := r.Values(); !slices.Contains(vals, "pw-json") || len(vals) != 2 {
		t.Errorf("Values = %q, want the password and the whole secret", vals)
	}
}

func TestResolverConnURI(t *testing.T) {
	b := setup(t)
	raw := "postgresql://etl:p%40ss%2Fw%3Ard@db.internal:5432/warehouse?sslmode=require"
	b.set(t, "updraft-connections-pg", raw)
	r := NewResolver(b.client)
	c, err := r.Conn(b.ctx, "pg")
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != "postgres" || c.Login != "etl" || c.Password != "p@ss/w:rd" || c.Host != "db.internal" ||
		c.Port != 5432 || c.Schema != "warehouse" || c.Extra["sslmode"] != "require" {
		t.Fatalf("Conn = %+v", c)
	}
	vals := r.Values()
	if !slices.Contains(vals, "p@ss/w:rd") || !slices.Contains(vals, raw) {
		t.Errorf("Values = %q, want the decoded password and the whole URI", vals)
	}
}

func TestResolverConnMissingOrBad(t *testing.T) {
	b := setup(t)
	r := NewResolver(b.client)
	_, err := r.Conn(b.ctx, "nowhere")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{`"nowhere"`, "updraft-connections-nowhere", b.project} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	b.set(t, "updraft-connections-broken", "not-a-uri-s3cr3t")
	_, err = r.Conn(b.ctx, "broken")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "updraft-connections-broken") {
		t.Fatalf("bad connection: %v", err)
	}
	if !slices.Contains(r.Values(), "not-a-uri-s3cr3t") {
		t.Errorf("an unparsable connection secret is not masked: Values = %q", r.Values())
	}
}

func TestResolverVariable(t *testing.T) {
	b := setup(t)
	b.set(t, "updraft-variables-region", "europe-west1")
	r := NewResolver(b.client)
	v, ok, err := r.Variable(b.ctx, "region")
	if err != nil || !ok || v != "europe-west1" {
		t.Fatalf("Variable(region) = %q, %v, %v", v, ok, err)
	}
	v, ok, err = r.Variable(b.ctx, "absent")
	if err != nil || ok || v != "" {
		t.Fatalf("Variable(absent) = %q, %v, %v", v, ok, err)
	}
	v, ok, err = r.Variable(b.ctx, "has.dots") // cannot be a secret: no override
	if err != nil || ok {
		t.Fatalf("Variable(has.dots) = %q, %v, %v", v, ok, err)
	}
	if got := r.Values(); !slices.Equal(got, []string{"europe-west1"}) {
		t.Errorf("Values = %q", got)
	}
}

func TestResolverIsSafeForConcurrentUse(t *testing.T) {
	b := setup(t)
	b.set(t, "a", "va")
	b.set(t, "updraft-connections-c", "http://u:vc@h")
	r := NewResolver(b.client)
	errs := make(chan error, 30)
	for range 10 {
		go func() { _, err := r.Secret(b.ctx, "a"); errs <- err }()
		go func() { _, err := r.Conn(b.ctx, "c"); errs <- err }()
		go func() { r.Values(); _, _, err := r.Variable(b.ctx, "x"); errs <- err }()
	}
	for range 30 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Values(); len(got) != 3 {
		t.Errorf("Values = %q, want each value once", got)
	}
}
