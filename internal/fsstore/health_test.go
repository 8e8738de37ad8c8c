package fsstore_test

import (
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/updraft-dev/updraft/internal/fsstore"
	"github.com/updraft-dev/updraft/scheduler"
)

// The health probe answers whether Firestore is reachable and whether it holds any DAG (an
// emulator that came back empty has none).
func TestPingTellsAnEmptyStoreFromAFilledOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	has, err := b.st.Ping(b.ctx, 10*time.Second)
	must(t, "ping an empty store", err)
	if has {
		t.Fatal("Ping of an empty store says it holds DAGs")
	}
	must(t, "create", b.st.CreateDAG(b.ctx, &scheduler.DAGRecord{DagID: "d"}))
	has, err = b.st.Ping(b.ctx, 10*time.Second)
	must(t, "ping", err)
	if !has {
		t.Fatal("Ping of a store with a DAG says it holds none")
	}
}

// A Firestore that does not answer (a peer that accepts connections and says nothing) or
// refuses them makes Ping fail with ErrNoAnswer, saying which Firestore and within what.
func TestPingOfAFirestoreThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, "listen", err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, "listen", err)
	refusedAddr := refused.Addr().String()
	refused.Close() // nothing listens there now

	for _, c := range []struct {
		name, addr, says string
	}{
		{"silent", silent.Addr().String(), "did not answer within 300ms"},
		// The client retries an unavailable Firestore, so this one too ends at the deadline.
		{"refused", refusedAddr, "within 300ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			must(t, "dial", err)
			t.Cleanup(func() { conn.Close() })
			st, err := fsstore.Open(t.Context(), "t-ping-nobody", option.WithGRPCConn(conn))
			must(t, "open", err)
			t.Cleanup(func() { st.Close() })
			_, err = st.Ping(t.Context(), 300*time.Millisecond)
			if !errors.Is(err, fsstore.ErrNoAnswer) {
				t.Fatalf("Ping: err = %v; want ErrNoAnswer", err)
			}
			if where := fsstore.Where("t-ping-nobody"); !strings.Contains(err.Error(), where) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Ping: %q; want it to name %q and say %q", err, where, c.says)
			}
		})
	}
}

// Where names the emulator when the process uses one.
func TestWhereNamesTheEmulator(t *testing.T) {
	t.Parallel()
	if got := fsstore.Where("p"); got != "Firestore emulator at "+os.Getenv("FIRESTORE_EMULATOR_HOST") {
		t.Fatalf("Where = %q; want the emulator's address", got)
	}
}
