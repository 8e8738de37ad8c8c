package secrets

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"regexp"
	"sort"
	"strings"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/internal/taskrun"
)

// emulatorHostEnv names the variable holding the stand-in's address (smemu.EnvVar; not
// imported, so production binaries do not carry the stand-in).
const emulatorHostEnv = "UPDRAFT_SECRETMANAGER_EMULATOR_HOST"

// ErrNotFound means the secret does not exist or has no versions.
var ErrNotFound = errors.New("secrets: not found")

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// Client is Updraft's Secret Manager adapter (the stand-in when
// UPDRAFT_SECRETMANAGER_EMULATOR_HOST is set).
type Client struct {
	sm      *secretmanager.Client
	project string
}

// Open connects to Secret Manager in project. getenv reads the environment (os.Getenv when
// nil); when it has UPDRAFT_SECRETMANAGER_EMULATOR_HOST the client talks to the stand-in there,
// without credentials.
func Open(ctx context.Context, project string, getenv func(string) string) (*Client, error) {
	if project == "" {
		return nil, errors.New("secrets: no project: set GOOGLE_CLOUD_PROJECT")
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	var opts []option.ClientOption
	if host := getenv(emulatorHostEnv); host != "" {
		opts = append(opts,
			option.WithEndpoint(host),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		)
	}
	sm, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("secrets: connect to Secret Manager in project %s: %w", project, err)
	}
	return &Client{sm: sm, project: project}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.sm.Close() }

func (c *Client) secretName(name string) string {
	return "projects/" + c.project + "/secrets/" + name
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("secrets: invalid secret name %q: use 1 to 255 letters, digits, - and _", name)
	}
	return nil
}

// Access returns the latest version's value of a secret. A missing secret (or one without
// versions) gives an error wrapping ErrNotFound that says how to create it; a disabled or
// destroyed latest version gives an error saying how to fix that.
func (c *Client) Access(ctx context.Context, name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	resp, err := c.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{
		Name: c.secretName(name) + "/versions/latest",
	})
	if err != nil {
		return "", c.accessError(name, err)
	}
	data := resp.GetPayload().GetData()
	if sum := resp.GetPayload().DataCrc32C; sum != nil && *sum != int64(crc32.Checksum(data, castagnoli)) {
		return "", fmt.Errorf("secrets: secret %q in project %s: the value arrived corrupted (CRC32C mismatch); try again", name, c.project)
	}
	return string(data), nil
}

func (c *Client) accessError(name string, err error) error {
	msg := status.Convert(err).Message()
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w: secret %q in project %s (or it has no versions): create it with `updraft secrets set %s`",
			ErrNotFound, name, c.project, name)
	case codes.FailedPrecondition:
		return fmt.Errorf("secrets: secret %q in project %s: its latest version is disabled or destroyed (%s): "+
			"enable it, or add a new version with `updraft secrets set %s`", name, c.project, msg, name)
	case codes.PermissionDenied:
		return fmt.Errorf("secrets: secret %q in project %s: permission denied (%s): the service account needs "+
			"roles/secretmanager.secretAccessor on it, or the secret does not exist", name, c.project, msg)
	default:
		return fmt.Errorf("secrets: access secret %q in project %s: %w", name, c.project, err)
	}
}

// Set stores value as a new version of the secret, creating the secret (with automatic
// replication) if needed.
func (c *Client) Set(ctx context.Context, name, value string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if value == "" {
		return fmt.Errorf("secrets: secret %q: refusing to store an empty value (Secret Manager rejects it)", name)
	}
	sum := int64(crc32.Checksum([]byte(value), castagnoli))
	add := func() error {
		_, err := c.sm.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
			Parent:  c.secretName(name),
			Payload: &secretmanagerpb.SecretPayload{Data: []byte(value), DataCrc32C: &sum},
		})
		return err
	}
	err := add()
	if status.Code(err) == codes.NotFound {
		_, err = c.sm.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
			Parent:   "projects/" + c.project,
			SecretId: name,
			Secret: &secretmanagerpb.Secret{Replication: &secretmanagerpb.Replication{
				Replication: &secretmanagerpb.Replication_Automatic_{Automatic: &secretmanagerpb.Replication_Automatic{}},
			}},
		})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("secrets: create secret %q in project %s: %w", name, c.project, err)
		}
		err = add()
	}
	if err != nil {
		return fmt.Errorf("secrets: set secret %q in project %s: %w", name, c.project, err)
	}
	return nil
}

// List returns the names of the project's secrets (not their values), sorted.
func (c *Client) List(ctx context.Context) ([]string, error) {
	var names []string
	it := c.sm.ListSecrets(ctx, &secretmanagerpb.ListSecretsRequest{Parent: "projects/" + c.project})
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("secrets: list secrets in project %s: %w", c.project, err)
		}
		// Google names the project by number here: keep only the secret id.
		names = append(names, s.GetName()[strings.LastIndex(s.GetName(), "/")+1:])
	}
	sort.Strings(names)
	return names, nil
}

// Factory connects a worker to Secret Manager and returns a factory of per-attempt resolvers
// and a function that closes the client. Locally (FIRESTORE_EMULATOR_HOST set) without the
// stand-in it returns no factory: such workers run without secrets, and templates that need
// one fail with a clear error.
func Factory(ctx context.Context, project string, getenv func(string) string) (func() taskrun.SecretResolver, func(), error) {
	if getenv("FIRESTORE_EMULATOR_HOST") != "" && getenv(emulatorHostEnv) == "" {
		return nil, func() {}, nil
	}
	c, err := Open(ctx, project, getenv)
	if err != nil {
		return nil, nil, err
	}
	return func() taskrun.SecretResolver { return NewResolver(c) }, func() { c.Close() }, nil
}
