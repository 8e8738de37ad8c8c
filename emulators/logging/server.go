package logemu

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// EnvVar is the environment variable that points Updraft at a running stand-in (host:port).
const EnvVar = "UPDRAFT_LOGGING_EMULATOR_HOST"

// MaxEntries bounds the entries kept; past it the oldest are dropped, so a long dev session
// does not grow without end.
const MaxEntries = 200000

// maxPageSize is Cloud Logging's largest page of ListLogEntries.
const maxPageSize = 1000

// Server is a running stand-in.
type Server struct {
	// Addr is host:port to give the clients (option.WithEndpoint) and EnvVar.
	Addr string

	grpc     *grpc.Server
	serveErr chan error
	stopOnce sync.Once

	mu      sync.Mutex
	entries []stored
	seq     int64
}

// stored is an entry with the order it was written in.
type stored struct {
	seq int64
	e   *loggingpb.LogEntry
}

var _ loggingpb.LoggingServiceV2Server = service{}

// Start serves the stand-in on a free port of 127.0.0.1.
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("logemu: listen: %w", err)
	}
	s := &Server{Addr: lis.Addr().String(), grpc: grpc.NewServer(), serveErr: make(chan error, 1)}
	loggingpb.RegisterLoggingServiceV2Server(s.grpc, service{s: s})
	go func() { s.serveErr <- s.grpc.Serve(lis) }()
	return s, nil
}

// Write adds entries, as Cloud Logging ingests them: an entry without an insertId gets one.
// The entries are copied.
func (s *Server) Write(entries ...*loggingpb.LogEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range entries {
		s.seq++
		c := proto.Clone(e).(*loggingpb.LogEntry)
		if c.InsertId == "" {
			c.InsertId = fmt.Sprintf("logemu-%012d", s.seq)
		}
		s.entries = append(s.entries, stored{seq: s.seq, e: c})
	}
	if over := len(s.entries) - MaxEntries; over > 0 {
		s.entries = append([]stored(nil), s.entries[over:]...)
	}
}

// Stop stops serving. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.grpc.Stop()
		<-s.serveErr
	})
}

type service struct {
	loggingpb.UnimplementedLoggingServiceV2Server
	s *Server
}

// ListLogEntries implements loggingpb.LoggingServiceV2Server.
func (v service) ListLogEntries(_ context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	if len(req.GetResourceNames()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "resource_names: at least one resource name is required")
	}
	var prefixes []string
	for _, rn := range req.GetResourceNames() {
		parts := strings.Split(rn, "/")
		if len(parts) != 2 || parts[0] != "projects" || parts[1] == "" {
			return nil, status.Errorf(codes.InvalidArgument, "resource_names: %q is not projects/PROJECT_ID (the stand-in serves projects only)", rn)
		}
		prefixes = append(prefixes, rn+"/logs/")
	}
	match, err := parseFilter(req.GetFilter())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "filter: %v", err)
	}
	desc := false
	switch strings.Join(strings.Fields(strings.ToLower(req.GetOrderBy())), " ") {
	case "", "timestamp asc", "timestamp":
	case "timestamp desc":
		desc = true
	default:
		return nil, status.Errorf(codes.InvalidArgument, "order_by: %q is neither \"timestamp asc\" nor \"timestamp desc\"", req.GetOrderBy())
	}
	size := int(req.GetPageSize())
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "page_size: %d is negative", size)
	}
	if size == 0 || size > maxPageSize {
		size = maxPageSize
	}
	from := 0
	if t := req.GetPageToken(); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "page_token: %q is not a token this server gave", t)
		}
		from = n
	}

	v.s.mu.Lock()
	var hits []stored
	for _, st := range v.s.entries {
		if underAny(st.e.GetLogName(), prefixes) && match(st.e) {
			hits = append(hits, st)
		}
	}
	v.s.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		ta, tb := a.e.GetTimestamp().AsTime(), b.e.GetTimestamp().AsTime()
		if !ta.Equal(tb) {
			return ta.Before(tb) != desc
		}
		return (a.seq < b.seq) != desc
	})
	out := &loggingpb.ListLogEntriesResponse{}
	if from > len(hits) {
		from = len(hits)
	}
	to := min(from+size, len(hits))
	for _, st := range hits[from:to] {
		out.Entries = append(out.Entries, proto.Clone(st.e).(*loggingpb.LogEntry))
	}
	if to < len(hits) {
		out.NextPageToken = strconv.Itoa(to)
	}
	return out, nil
}

func underAny(logName string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(logName, p) {
			return true
		}
	}
	return false
}
