package smemu

import (
	"fmt"
	"net"
	"sync"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
)

// EnvVar names the variable clients read to find the stand-in ("127.0.0.1:PORT").
const EnvVar = "UPDRAFT_SECRETMANAGER_EMULATOR_HOST"

// Server is a running stand-in.
type Server struct {
	// Addr is where it listens, "127.0.0.1:PORT".
	Addr string

	grpc *grpc.Server
	done chan struct{}
	stop sync.Once
}

// Start listens on 127.0.0.1 on a free port (or on addr if it is non-empty) and serves until
// Stop. With a non-empty dataFile the secrets are loaded from that file if it exists and
// written back to it after every change; "" keeps them in memory only.
func Start(addr, dataFile string) (*Server, error) {
	svc, err := newService(dataFile)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smemu: listen on %s: %w", addr, err)
	}
	s := &Server{Addr: lis.Addr().String(), grpc: grpc.NewServer(), done: make(chan struct{})}
	secretmanagerpb.RegisterSecretManagerServiceServer(s.grpc, svc)
	go func() {
		defer close(s.done)
		// Serve returns an error only if the listener breaks; clients then see the failure.
		_ = s.grpc.Serve(lis)
	}()
	return s, nil
}

// Stop finishes the calls in progress, closes the listener and returns once serving ended.
// Every change has been written to the data file by then. It is safe to call more than once.
func (s *Server) Stop() {
	s.stop.Do(func() {
		s.grpc.GracefulStop()
		<-s.done
	})
}
