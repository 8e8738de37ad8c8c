package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// NoAnswerError is a call to Firestore or Pub/Sub that got no answer: the service did not
// answer within the call's deadline, or refused the connection.
type NoAnswerError struct {
	// Service names what did not answer: "Firestore emulator at 127.0.0.1:8432".
	Service string
	// Within is the call's deadline (0 when the connection was refused).
	Within time.Duration
	// Hint says what to do, e.g. "is `make dev` running?" ("" for none).
	Hint string
	// It deliberately does not wrap the gRPC error: the client libraries retry an
	// Unavailable or DeadlineExceeded status without end, and would find it through Unwrap.
}

func (e *NoAnswerError) Error() string {
	msg := e.Service + " refused the connection"
	if e.Within > 0 {
		msg = fmt.Sprintf("%s did not answer within %s", e.Service, e.Within)
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

// Service names for ClientOptions.
const (
	ServiceFirestore = "firestore"
	ServicePubSub    = "pubsub"
)

// ClientOptions are options for a Firestore (ServiceFirestore) or Pub/Sub (ServicePubSub)
// client, read from the environment's emulator host variables:
//
//   - on an emulator, reconnect within a second of it coming back (gRPC's default backoff
//     grows to two minutes, which would keep a healed stack waiting);
//   - when callWithin > 0, each call (each retry of it included) is bounded by callWithin,
//     and a call that gets no answer, or a refused connection, fails at once with a
//     *NoAnswerError naming the service and carrying hint, instead of the client libraries
//     retrying it without end. For commands a person waits on (the CLI), not for the stack.
func ClientOptions(service string, project string, callWithin time.Duration, hint string) ([]option.ClientOption, error) {
	var name, host string
	switch service {
	case ServiceFirestore:
		host, name = os.Getenv("FIRESTORE_EMULATOR_HOST"), "Firestore"
	case ServicePubSub:
		host, name = os.Getenv("PUBSUB_EMULATOR_HOST"), "Pub/Sub"
	default:
		return nil, fmt.Errorf("local: no client options for %q", service)
	}
	where := name + " (project " + project + ")"
	if host != "" {
		where = name + " emulator at " + host
	}
	var dial []grpc.DialOption
	if host != "" {
		dial = append(dial, grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
	}
	if callWithin > 0 {
		d := deadlines{where: where, within: callWithin, hint: hint}
		dial = append(dial, grpc.WithChainUnaryInterceptor(d.unary), grpc.WithChainStreamInterceptor(d.stream))
	}
	if service == ServiceFirestore && host != "" {
		// The Firestore client dials the emulator itself and ignores dial options then: give
		// it a connection made the same way (plaintext, the emulator's "owner" token).
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(emulatorOwner{}),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
		conn, err := grpc.NewClient("passthrough:///"+host, dial...)
		if err != nil {
			return nil, fmt.Errorf("local: connect to %s: %w", where, err)
		}
		return []option.ClientOption{option.WithGRPCConn(conn)}, nil
	}
	opts := make([]option.ClientOption, 0, len(dial))
	for _, o := range dial {
		opts = append(opts, option.WithGRPCDialOption(o))
	}
	return opts, nil
}

// emulatorOwner is the Firestore emulator's credentials: every call as the owner.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (emulatorOwner) RequireTransportSecurity() bool { return false }

// deadlines bounds each call and turns no answer into a *NoAnswerError.
type deadlines struct {
	where  string
	within time.Duration
	hint   string
}

// explain returns err, or a *NoAnswerError when the call got no answer while its caller
// still waited (a caller's own deadline or cancellation is returned as it is).
func (d deadlines) explain(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded:
		return &NoAnswerError{Service: d.where, Within: d.within, Hint: d.hint}
	case codes.Unavailable:
		return &NoAnswerError{Service: d.where, Hint: d.hint}
	}
	return err
}

func (d deadlines) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	cctx, cancel := context.WithTimeout(ctx, d.within)
	defer cancel()
	return d.explain(ctx, invoker(cctx, method, req, reply, cc, opts...))
}

func (d deadlines) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cctx, cancel := context.WithTimeout(ctx, d.within)
	s, err := streamer(cctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, d.explain(ctx, err)
	}
	return &boundStream{ClientStream: s, ctx: ctx, cancel: cancel, d: d}, nil
}

// boundStream is a stream under a deadline that ends (and releases its timer) when the
// stream does.
type boundStream struct {
	grpc.ClientStream
	ctx    context.Context
	cancel context.CancelFunc
	d      deadlines
}

func (s *boundStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
		if !errors.Is(err, io.EOF) {
			err = s.d.explain(s.ctx, err)
		}
	}
	return err
}

func (s *boundStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err != nil && !errors.Is(err, io.EOF) {
		err = s.d.explain(s.ctx, err)
	}
	return err
}
