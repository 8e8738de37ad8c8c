package fsstore

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Transient reports whether a failed call may succeed when tried again: Firestore was
// unavailable, overloaded or slow (the call's own deadline passed), or failed internally.
// A failed precondition is not transient (it is ErrConflict: re-read and decide), nor is a
// cancelled call.
func Transient(err error) bool {
	if err == nil || errors.Is(err, ErrConflict) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Internal:
		return true
	}
	return false
}
