package smemu

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// shared is the stand-in most tests use; each test works in its own project.
var (
	shared   *Server
	projects atomic.Int64 // keeps projects unique across -count runs
)

func TestMain(m *testing.M) {
	s, err := Start("", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// connect returns the official client talking to the stand-in at addr.
func connect(t *testing.T, addr string) *secretmanager.Client {
	t.Helper()
	c, err := secretmanager.NewClient(context.Background(),
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bundle is what a test works with: a client on the shared stand-in and its own project.
type bundle struct {
	ctx     context.Context
	c       *secretmanager.Client
	project string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	t.Parallel()
	project := fmt.Sprintf("%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), projects.Add(1))
	return &bundle{ctx: t.Context(), c: connect(t, shared.Addr), project: project}
}

func (b *bundle) secret(id string) string { return "projects/" + b.project + "/secrets/" + id }

func (b *bundle) create(t *testing.T, id string) {
	t.Helper()
	_, err := b.c.CreateSecret(b.ctx, &secretmanagerpb.CreateSecretRequest{
		Parent:   "projects/" + b.project,
		SecretId: id,
		Secret: &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
			Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
		}},
	})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

func (b *bundle) add(t *testing.T, id, value string) *secretmanagerpb.SecretVersion {
	t.Helper()
	sum := int64(crc32.Checksum([]byte(value), crc32.MakeTable(crc32.Castagnoli)))
	v, err := b.c.AddSecretVersion(b.ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  b.secret(id),
		Payload: &secretmanagerpb.SecretPayload{Data: []byte(value), DataCrc32C: &sum},
	})
	if err != nil {
		t.Fatalf("add version to %s: %v", id, err)
	}
	return v
}

func (b *bundle) access(name string) (string, error) {
	resp, err := b.c.AccessSecretVersion(b.ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name})
	if err != nil {
		return "", err
	}
	data := resp.GetPayload().GetData()
	if sum := resp.GetPayload().DataCrc32C; sum == nil || *sum != int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) {
		return "", errors.New("missing or wrong data_crc32c")
	}
	return string(data), nil
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

func wantValue(t *testing.T, b *bundle, name, want string) {
	t.Helper()
	got, err := b.access(name)
	if err != nil {
		t.Fatalf("access %s: %v", name, err)
	}
	if got != want {
		t.Fatalf("access %s = %q, want %q", name, got, want)
	}
}

func TestCreateAddAccess(t *testing.T) {
	b := setup(t)
	b.create(t, "db-password")
	v1 := b.add(t, "db-password", "one")
	v2 := b.add(t, "db-password", "two")
	if v1.GetName() != b.secret("db-password")+"/versions/1" || v2.GetName() != b.secret("db-password")+"/versions/2" {
		t.Fatalf("version names %q, %q", v1.GetName(), v2.GetName())
	}
	if v2.GetState() != secretmanagerpb.SecretVersion_ENABLED || !v2.GetClientSpecifiedPayloadChecksum() {
		t.Fatalf("new version: %v", v2)
	}
	wantValue(t, b, b.secret("db-password")+"/versions/latest", "two")
	wantValue(t, b, b.secret("db-password")+"/versions/1", "one")
	wantValue(t, b, b.secret("db-password")+"/versions/2", "two")

	resp, err := b.c.AccessSecretVersion(b.ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: b.secret("db-password") + "/versions/latest"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetName() != v2.GetName() {
		t.Errorf("access latest names %q, want the resolved %q", resp.GetName(), v2.GetName())
	}
	got, err := b.c.GetSecretVersion(b.ctx, &secretmanagerpb.GetSecretVersionRequest{Name: b.secret("db-password") + "/versions/latest"})
	if err != nil || got.GetName() != v2.GetName() {
		t.Fatalf("get latest = %v, %v", got, err)
	}
}

func TestLatestIsMostRecentlyCreatedEvenIfDisabled(t *testing.T) {
	b := setup(t)
	b.create(t, "token")
	b.add(t, "token", "old")
	v2 := b.add(t, "token", "new")
	if _, err := b.c.DisableSecretVersion(b.ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: v2.GetName()}); err != nil {
		t.Fatal(err)
	}
	_, err := b.access(b.secret("token") + "/versions/latest")
	wantCode(t, err, codes.FailedPrecondition)
	wantValue(t, b, b.secret("token")+"/versions/1", "old")
}

func TestDisableEnableDestroy(t *testing.T) {
	b := setup(t)
	b.create(t, "key")
	v := b.add(t, "key", "value")
	d, err := b.c.DisableSecretVersion(b.ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: v.GetName()})
	if err != nil || d.GetState() != secretmanagerpb.SecretVersion_DISABLED {
		t.Fatalf("disable = %v, %v", d, err)
	}
	_, err = b.access(v.GetName())
	wantCode(t, err, codes.FailedPrecondition)

	// A stale etag is refused; the current one is accepted.
	_, err = b.c.EnableSecretVersion(b.ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: v.GetName(), Etag: v.GetEtag()})
	wantCode(t, err, codes.Aborted)
	if _, err := b.c.EnableSecretVersion(b.ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: v.GetName(), Etag: d.GetEtag()}); err != nil {
		t.Fatal(err)
	}
	wantValue(t, b, v.GetName(), "value")

	x, err := b.c.DestroySecretVersion(b.ctx, &secretmanagerpb.DestroySecretVersionRequest{Name: v.GetName()})
	if err != nil || x.GetState() != secretmanagerpb.SecretVersion_DESTROYED || x.GetDestroyTime() == nil {
		t.Fatalf("destroy = %v, %v", x, err)
	}
	_, err = b.access(v.GetName())
	wantCode(t, err, codes.FailedPrecondition)
	_, err = b.c.EnableSecretVersion(b.ctx, &secretmanagerpb.EnableSecretVersionRequest{Name: v.GetName()})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestErrors(t *testing.T) {
	b := setup(t)
	b.create(t, "exists")
	_, err := b.access(b.secret("missing") + "/versions/latest")
	wantCode(t, err, codes.NotFound)
	_, err = b.access(b.secret("exists") + "/versions/latest") // no versions yet
	wantCode(t, err, codes.NotFound)
	b.add(t, "exists", "v")
	_, err = b.access(b.secret("exists") + "/versions/2")
	wantCode(t, err, codes.NotFound)
	_, err = b.access(b.secret("exists") + "/versions/0")
	wantCode(t, err, codes.InvalidArgument)
	_, err = b.c.CreateSecret(b.ctx, &secretmanagerpb.CreateSecretRequest{
		Parent: "projects/" + b.project, SecretId: "exists",
		Secret: &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
			Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
		}},
	})
	wantCode(t, err, codes.AlreadyExists)
	for _, id := range []string{"", "has.dot", "has space", strings.Repeat("x", 256)} {
		_, err = b.c.CreateSecret(b.ctx, &secretmanagerpb.CreateSecretRequest{
			Parent: "projects/" + b.project, SecretId: id,
			Secret: &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
				Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
			}},
		})
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err = b.c.CreateSecret(b.ctx, &secretmanagerpb.CreateSecretRequest{
		Parent: "projects/" + b.project, SecretId: "no-replication", Secret: &secretmanagerpb.Secret{},
	})
	wantCode(t, err, codes.InvalidArgument)
	_, err = b.access("secrets/exists/versions/1")
	wantCode(t, err, codes.InvalidArgument)

	bad := int64(12345)
	_, err = b.c.AddSecretVersion(b.ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent: b.secret("exists"), Payload: &secretmanagerpb.SecretPayload{Data: []byte("v"), DataCrc32C: &bad},
	})
	wantCode(t, err, codes.InvalidArgument)
	_, err = b.c.AddSecretVersion(b.ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent: b.secret("exists"), Payload: &secretmanagerpb.SecretPayload{},
	})
	wantCode(t, err, codes.InvalidArgument)
	_, err = b.c.AddSecretVersion(b.ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent: b.secret("missing"), Payload: &secretmanagerpb.SecretPayload{Data: []byte("v")},
	})
	wantCode(t, err, codes.NotFound)
}

func TestListAndDelete(t *testing.T) {
	b := setup(t)
	for _, id := range []string{"c", "a", "b"} {
		b.create(t, id)
	}
	for _, v := range []string{"1", "2", "3"} {
		b.add(t, "a", v)
	}

	var names []string
	it := b.c.ListSecrets(b.ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/" + b.project, PageSize: 2})
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, s.GetName())
	}
	if want := []string{b.secret("a"), b.secret("b"), b.secret("c")}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("list = %v, want %v", names, want)
	}

	var versions []string
	vit := b.c.ListSecretVersions(b.ctx, &secretmanagerpb.ListSecretVersionsRequest{Parent: b.secret("a")})
	for {
		v, err := vit.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v.GetName()[len(b.secret("a")):])
	}
	if fmt.Sprint(versions) != "[/versions/3 /versions/2 /versions/1]" {
		t.Fatalf("versions = %v, want newest first", versions)
	}

	if err := b.c.DeleteSecret(b.ctx, &secretmanagerpb.DeleteSecretRequest{Name: b.secret("a")}); err != nil {
		t.Fatal(err)
	}
	_, err := b.c.GetSecret(b.ctx, &secretmanagerpb.GetSecretRequest{Name: b.secret("a")})
	wantCode(t, err, codes.NotFound)
	_, err = b.access(b.secret("a") + "/versions/1")
	wantCode(t, err, codes.NotFound)
	err = b.c.DeleteSecret(b.ctx, &secretmanagerpb.DeleteSecretRequest{Name: b.secret("a")})
	wantCode(t, err, codes.NotFound)
}

func TestProjectsAreIsolated(t *testing.T) {
	b := setup(t)
	other := &bundle{ctx: b.ctx, c: b.c, project: b.project + "-other"}
	b.create(t, "shared-name")
	b.add(t, "shared-name", "mine")
	_, err := other.access(other.secret("shared-name") + "/versions/latest")
	wantCode(t, err, codes.NotFound)
	other.create(t, "shared-name") // no ALREADY_EXISTS across projects
	other.add(t, "shared-name", "theirs")
	wantValue(t, b, b.secret("shared-name")+"/versions/latest", "mine")
	wantValue(t, other, other.secret("shared-name")+"/versions/latest", "theirs")

	it := other.c.ListSecrets(b.ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/" + other.project})
	s, err := it.Next()
	if err != nil || s.GetName() != other.secret("shared-name") {
		t.Fatalf("first = %v, %v", s, err)
	}
	if _, err := it.Next(); !errors.Is(err, iterator.Done) {
		t.Fatalf("second: %v, want Done", err)
	}
}

func TestPersistence(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "state", "secrets.json")
	s, err := Start("", file)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{ctx: t.Context(), c: connect(t, s.Addr), project: "persist"}
	b.create(t, "kept")
	b.add(t, "kept", "first")
	v2 := b.add(t, "kept", "second")
	if _, err := b.c.DisableSecretVersion(b.ctx, &secretmanagerpb.DisableSecretVersionRequest{Name: v2.GetName()}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("data file mode %v, want 0600", perm)
	}

	s2, err := Start("", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s2.Stop)
	b.c = connect(t, s2.Addr)
	wantValue(t, b, b.secret("kept")+"/versions/1", "first")
	_, err = b.access(b.secret("kept") + "/versions/latest")
	wantCode(t, err, codes.FailedPrecondition)
	v3 := b.add(t, "kept", "third")
	if v3.GetName() != b.secret("kept")+"/versions/3" {
		t.Fatalf("version after restart: %s", v3.GetName())
	}
	wantValue(t, b, b.secret("kept")+"/versions/latest", "third")
}

func TestStartRejectsACorruptDataFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Start("", file); err == nil {
		s.Stop()
		t.Fatal("Start accepted a corrupt data file")
	}
}
