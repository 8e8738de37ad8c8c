package fsstore_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/updraft-dev/updraft/internal/fsstore"
)

// Transient tells a call worth trying again from one whose answer stands.
func TestTransient(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("update: %w", fsstore.ErrConflict), false},
		{fmt.Errorf("get: %w", fsstore.ErrNotFound), false},
		{fmt.Errorf("create: %w", fsstore.ErrExists), false},
		{context.Canceled, false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{status.Error(codes.PermissionDenied, "no"), false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{status.Error(codes.Unavailable, "down"), true},
		{status.Error(codes.DeadlineExceeded, "slow"), true},
		{status.Error(codes.Aborted, "contention"), true},
		{status.Error(codes.ResourceExhausted, "quota"), true},
		{status.Error(codes.Internal, "oops"), true},
	} {
		if got := fsstore.Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v; want %v", c.err, got, c.want)
		}
	}
}
