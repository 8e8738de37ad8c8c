package smemu

import (
	"context"
	"fmt"
	"hash/crc32"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxPayload is Google's limit on a version's data.
const maxPayload = 64 << 10

// maxPageSize is Google's cap on list page sizes.
const maxPageSize = 25000

var (
	secretIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	projectRE  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)
	aliasRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// secret is one secret and all its versions; versions[i] is version i+1.
type secret struct {
	meta     *secretmanagerpb.Secret
	versions []*version
}

// version is one secret version; data is nil once destroyed.
type version struct {
	meta *secretmanagerpb.SecretVersion
	data []byte
}

// service implements the SecretManagerService methods the stand-in supports.
type service struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	mu      sync.Mutex
	secrets map[string]*secret // by resource name, projects/P/secrets/S
	file    string             // "" = memory only
	etag    int64              // last etag handed out
}

func newService(dataFile string) (*service, error) {
	s := &service{secrets: map[string]*secret{}, file: dataFile, etag: time.Now().UnixNano()}
	if dataFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// nextEtag returns a fresh etag, quoted like Google's.
func (s *service) nextEtag() string {
	s.etag++
	return strconv.Quote(strconv.FormatInt(s.etag, 16))
}

// commit persists a change already applied in memory, undoing it if that fails.
func (s *service) commit(undo func()) error {
	if err := s.save(); err != nil {
		undo()
		return status.Errorf(codes.Internal, "smemu: persist: %v", err)
	}
	return nil
}

func parseProject(parent string) (string, error) {
	parts := strings.Split(parent, "/")
	if len(parts) >= 3 && parts[0] == "projects" && parts[2] == "locations" {
		return "", status.Errorf(codes.Unimplemented, "regional secrets (%s) are not supported by the Secret Manager stand-in", parent)
	}
	if len(parts) != 2 || parts[0] != "projects" || !projectRE.MatchString(parts[1]) {
		return "", status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/PROJECT", parent)
	}
	return parts[1], nil
}

func parseSecret(name string) (string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[2] != "secrets" {
		if len(parts) >= 3 && parts[0] == "projects" && parts[2] == "locations" {
			return "", status.Errorf(codes.Unimplemented, "regional secrets (%s) are not supported by the Secret Manager stand-in", name)
		}
		return "", status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/PROJECT/secrets/SECRET", name)
	}
	if _, err := parseProject(parts[0] + "/" + parts[1]); err != nil {
		return "", err
	}
	if !secretIDRE.MatchString(parts[3]) {
		return "", status.Errorf(codes.InvalidArgument, "invalid secret id %q: use 1 to 255 letters, digits, - and _", parts[3])
	}
	return name, nil
}

func parseVersion(name string) (secretName, v string, err error) {
	i := strings.LastIndex(name, "/versions/")
	if i < 0 {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/PROJECT/secrets/SECRET/versions/VERSION", name)
	}
	secretName, v = name[:i], name[i+len("/versions/"):]
	if _, err := parseSecret(secretName); err != nil {
		return "", "", err
	}
	if v == "" || strings.Contains(v, "/") {
		return "", "", status.Errorf(codes.InvalidArgument, "invalid resource name %q: want projects/PROJECT/secrets/SECRET/versions/VERSION", name)
	}
	return secretName, v, nil
}

// lookupSecret finds a secret; the caller holds s.mu.
func (s *service) lookupSecret(name string) (*secret, error) {
	sec, ok := s.secrets[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found or has no versions.", name)
	}
	return sec, nil
}

// lookupVersion finds a version by number or, when aliases are allowed (Get and Access), by
// "latest" or a version alias of the secret. The caller holds s.mu.
func (s *service) lookupVersion(name string, aliases bool) (*version, error) {
	secretName, v, err := parseVersion(name)
	if err != nil {
		return nil, err
	}
	sec, err := s.lookupSecret(secretName)
	if err != nil {
		return nil, err
	}
	var n int64
	switch {
	case aliases && v == "latest":
		n = int64(len(sec.versions))
	case v[0] >= '0' && v[0] <= '9':
		n, err = strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return nil, status.Errorf(codes.InvalidArgument, "invalid version %q in %s: versions count from 1", v, name)
		}
	case aliases && aliasRE.MatchString(v):
		n = sec.meta.GetVersionAliases()[v]
	default:
		return nil, status.Errorf(codes.InvalidArgument, "invalid version %q in %s: want a version number", v, name)
	}
	if n < 1 || n > int64(len(sec.versions)) {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", name)
	}
	return sec.versions[n-1], nil
}

// page cuts [0, n) into the page a list request asked for.
func page(n int, size int32, token string) (from, to int, next string, err error) {
	if token != "" {
		from, err = strconv.Atoi(token)
		if err != nil || from < 0 || from > n {
			return 0, 0, "", status.Errorf(codes.InvalidArgument, "invalid page token %q", token)
		}
	}
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	to = min(n, from+int(size))
	if to < n {
		next = strconv.Itoa(to)
	}
	return from, to, next, nil
}

func noFilter(filter string) error {
	if filter != "" {
		return status.Errorf(codes.Unimplemented, "list filters (%q) are not supported by the Secret Manager stand-in", filter)
	}
	return nil
}

func checkEtag(have, want, name string) error {
	if want != "" && want != have {
		return status.Errorf(codes.Aborted, "etag %s does not match the current etag of %s", want, name)
	}
	return nil
}

// CreateSecret creates a secret with no versions.
func (s *service) CreateSecret(ctx context.Context, req *secretmanagerpb.CreateSecretRequest) (*secretmanagerpb.Secret, error) {
	if _, err := parseProject(req.GetParent()); err != nil {
		return nil, err
	}
	if !secretIDRE.MatchString(req.GetSecretId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid secret id %q: use 1 to 255 letters, digits, - and _", req.GetSecretId())
	}
	if req.GetSecret() == nil {
		return nil, status.Error(codes.InvalidArgument, "Field [secret] is required.")
	}
	if r := req.GetSecret().GetReplication(); r.GetAutomatic() == nil && len(r.GetUserManaged().GetReplicas()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Field [secret.replication] is required: set automatic or user-managed replicas.")
	}
	name := req.GetParent() + "/secrets/" + req.GetSecretId()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Secret [%s] already exists.", name)
	}
	meta := proto.CloneOf(req.GetSecret())
	meta.Name = name
	meta.CreateTime = timestamppb.Now()
	meta.Etag = s.nextEtag()
	s.secrets[name] = &secret{meta: meta}
	if err := s.commit(func() { delete(s.secrets, name) }); err != nil {
		return nil, err
	}
	return proto.CloneOf(meta), nil
}

// GetSecret returns a secret's metadata.
func (s *service) GetSecret(ctx context.Context, req *secretmanagerpb.GetSecretRequest) (*secretmanagerpb.Secret, error) {
	name, err := parseSecret(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupSecret(name)
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(sec.meta), nil
}

// ListSecrets lists a project's secrets, sorted by name.
func (s *service) ListSecrets(ctx context.Context, req *secretmanagerpb.ListSecretsRequest) (*secretmanagerpb.ListSecretsResponse, error) {
	if _, err := parseProject(req.GetParent()); err != nil {
		return nil, err
	}
	if err := noFilter(req.GetFilter()); err != nil {
		return nil, err
	}
	prefix := req.GetParent() + "/secrets/"
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name := range s.secrets {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	from, to, next, err := page(len(names), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &secretmanagerpb.ListSecretsResponse{NextPageToken: next, TotalSize: int32(len(names))}
	for _, name := range names[from:to] {
		resp.Secrets = append(resp.Secrets, proto.CloneOf(s.secrets[name].meta))
	}
	return resp, nil
}

// DeleteSecret deletes a secret and all its versions.
func (s *service) DeleteSecret(ctx context.Context, req *secretmanagerpb.DeleteSecretRequest) (*emptypb.Empty, error) {
	name, err := parseSecret(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupSecret(name)
	if err != nil {
		return nil, err
	}
	if err := checkEtag(sec.meta.GetEtag(), req.GetEtag(), name); err != nil {
		return nil, err
	}
	delete(s.secrets, name)
	if err := s.commit(func() { s.secrets[name] = sec }); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// AddSecretVersion adds an enabled version holding the payload, verifying its checksum if
// the caller sent one.
func (s *service) AddSecretVersion(ctx context.Context, req *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	name, err := parseSecret(req.GetParent())
	if err != nil {
		return nil, err
	}
	data := req.GetPayload().GetData()
	switch {
	case len(data) == 0:
		return nil, status.Error(codes.InvalidArgument, "Field [payload] is required.")
	case len(data) > maxPayload:
		return nil, status.Errorf(codes.InvalidArgument, "payload is %d bytes: the limit is %d", len(data), maxPayload)
	}
	sum := req.GetPayload().DataCrc32C
	if sum != nil && *sum != int64(crc32.Checksum(data, castagnoli)) {
		return nil, status.Error(codes.InvalidArgument, "Checksum mismatch: payload.data_crc32c does not match payload.data.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupSecret(name)
	if err != nil {
		return nil, err
	}
	v := &version{
		meta: &secretmanagerpb.SecretVersion{
			Name:                           fmt.Sprintf("%s/versions/%d", name, len(sec.versions)+1),
			CreateTime:                     timestamppb.Now(),
			State:                          secretmanagerpb.SecretVersion_ENABLED,
			ReplicationStatus:              replicationStatus(sec.meta.GetReplication()),
			Etag:                           s.nextEtag(),
			ClientSpecifiedPayloadChecksum: sum != nil,
		},
		data: append([]byte(nil), data...),
	}
	sec.versions = append(sec.versions, v)
	if err := s.commit(func() { sec.versions = sec.versions[:len(sec.versions)-1] }); err != nil {
		return nil, err
	}
	return proto.CloneOf(v.meta), nil
}

func replicationStatus(r *secretmanagerpb.Replication) *secretmanagerpb.ReplicationStatus {
	if um := r.GetUserManaged(); um != nil {
		st := &secretmanagerpb.ReplicationStatus_UserManagedStatus{}
		for _, rep := range um.GetReplicas() {
			st.Replicas = append(st.Replicas, &secretmanagerpb.ReplicationStatus_UserManagedStatus_ReplicaStatus{Location: rep.GetLocation()})
		}
		return &secretmanagerpb.ReplicationStatus{ReplicationStatus: &secretmanagerpb.ReplicationStatus_UserManaged{UserManaged: st}}
	}
	return &secretmanagerpb.ReplicationStatus{ReplicationStatus: &secretmanagerpb.ReplicationStatus_Automatic{
		Automatic: &secretmanagerpb.ReplicationStatus_AutomaticStatus{},
	}}
}

// GetSecretVersion returns a version's metadata; "latest" is the most recently created one.
func (s *service) GetSecretVersion(ctx context.Context, req *secretmanagerpb.GetSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return proto.CloneOf(v.meta), nil
}

// ListSecretVersions lists a secret's versions, newest first, as Google does.
func (s *service) ListSecretVersions(ctx context.Context, req *secretmanagerpb.ListSecretVersionsRequest) (*secretmanagerpb.ListSecretVersionsResponse, error) {
	name, err := parseSecret(req.GetParent())
	if err != nil {
		return nil, err
	}
	if err := noFilter(req.GetFilter()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.lookupSecret(name)
	if err != nil {
		return nil, err
	}
	n := len(sec.versions)
	from, to, next, err := page(n, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &secretmanagerpb.ListSecretVersionsResponse{NextPageToken: next, TotalSize: int32(n)}
	for i := from; i < to; i++ {
		resp.Versions = append(resp.Versions, proto.CloneOf(sec.versions[n-1-i].meta))
	}
	return resp, nil
}

// AccessSecretVersion returns a version's data with its CRC32C. A disabled or destroyed
// version fails with FAILED_PRECONDITION, also when reached through "latest".
func (s *service) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(req.GetName(), true)
	if err != nil {
		return nil, err
	}
	if st := v.meta.GetState(); st != secretmanagerpb.SecretVersion_ENABLED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in %s state.", v.meta.GetName(), st)
	}
	sum := int64(crc32.Checksum(v.data, castagnoli))
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    v.meta.GetName(),
		Payload: &secretmanagerpb.SecretPayload{Data: append([]byte(nil), v.data...), DataCrc32C: &sum},
	}, nil
}

// DisableSecretVersion disables an enabled or disabled version.
func (s *service) DisableSecretVersion(ctx context.Context, req *secretmanagerpb.DisableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return s.transition(req.GetName(), req.GetEtag(), secretmanagerpb.SecretVersion_DISABLED)
}

// EnableSecretVersion enables a disabled or enabled version.
func (s *service) EnableSecretVersion(ctx context.Context, req *secretmanagerpb.EnableSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return s.transition(req.GetName(), req.GetEtag(), secretmanagerpb.SecretVersion_ENABLED)
}

// DestroySecretVersion destroys a version's data for good (at once: the secret's
// version_destroy_ttl is not honoured).
func (s *service) DestroySecretVersion(ctx context.Context, req *secretmanagerpb.DestroySecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	return s.transition(req.GetName(), req.GetEtag(), secretmanagerpb.SecretVersion_DESTROYED)
}

// transition moves a numbered version to a new state. Nothing leaves DESTROYED.
func (s *service) transition(name, etag string, to secretmanagerpb.SecretVersion_State) (*secretmanagerpb.SecretVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.lookupVersion(name, false)
	if err != nil {
		return nil, err
	}
	if err := checkEtag(v.meta.GetEtag(), etag, name); err != nil {
		return nil, err
	}
	if v.meta.GetState() == secretmanagerpb.SecretVersion_DESTROYED {
		return nil, status.Errorf(codes.FailedPrecondition, "Secret Version [%s] is in DESTROYED state.", name)
	}
	oldMeta, oldData := v.meta, v.data
	v.meta = proto.CloneOf(oldMeta)
	v.meta.State = to
	v.meta.Etag = s.nextEtag()
	if to == secretmanagerpb.SecretVersion_DESTROYED {
		v.meta.DestroyTime = timestamppb.Now()
		v.data = nil
	}
	if err := s.commit(func() { v.meta, v.data = oldMeta, oldData }); err != nil {
		return nil, err
	}
	return proto.CloneOf(v.meta), nil
}
