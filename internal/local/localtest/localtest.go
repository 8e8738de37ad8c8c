// Package localtest holds what tests that run a local stack share: a log buffer safe for
// the stack's goroutines, and the stand-ins started once per test binary with their
// environment set for the clients and the workers the tests start. Only tests import it.
package localtest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"

	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/local"
)

// SyncBuffer is a bytes.Buffer that concurrent writers (a stack's log) may share.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// StartStandIns starts the stand-ins Google ships no emulator for (BigQuery aside), keeping
// their files under dir, with users as the fake Slack workspace's members, and sets their
// environment in this process. The caller stops them.
func StartStandIns(dir string, users []slackfake.User) (*local.StandIns, error) {
	s, err := local.StartStandIns(context.Background(), local.StandInConfig{Dir: dir, SlackUsers: users})
	if err != nil {
		return nil, err
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}
