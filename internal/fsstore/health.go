package fsstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNoAnswer means Firestore did not answer a call within its deadline, or refused the
// connection.
var ErrNoAnswer = errors.New("fsstore: no answer")

// Where names the Firestore the process talks to, for messages: "Firestore emulator at
// 127.0.0.1:PORT" or "Firestore (project P)".
func Where(project string) string {
	if h := os.Getenv("FIRESTORE_EMULATOR_HOST"); h != "" {
		return "Firestore emulator at " + h
	}
	return "Firestore (project " + project + ")"
}

// Ping is the store's health probe: one query for a single DAG document, within d (one
// document read at most). hasDAGs reports whether any DAG is stored, so a caller can tell a
// store that came back empty (an emulator restarted without its data). An error wraps
// ErrNoAnswer when Firestore did not answer.
func (s *Store) Ping(ctx context.Context, d time.Duration) (hasDAGs bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	it := s.fs.Collection(ColDAGs).Select().Limit(1).Documents(ctx)
	defer it.Stop()
	_, err = it.Next()
	s.read(1)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, iterator.Done):
		return false, nil
	}
	return false, explain(err, Where(s.project), d)
}

// explain turns a call's failure to reach Firestore into an error saying which Firestore
// did not answer within what time, wrapping ErrNoAnswer; other errors are returned as they are.
func explain(err error, where string, d time.Duration) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s did not answer within %s", ErrNoAnswer, where, d)
	case status.Code(err) == codes.Unavailable:
		return fmt.Errorf("%w: %s is unavailable: %v", ErrNoAnswer, where, status.Convert(err).Message())
	}
	return fmt.Errorf("fsstore: ping: %w", err)
}
