package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	runemu "github.com/updraft-dev/updraft/emulators/cloudrun"
	gcsemu "github.com/updraft-dev/updraft/emulators/gcs"
	logemu "github.com/updraft-dev/updraft/emulators/logging"
	smemu "github.com/updraft-dev/updraft/emulators/secretmanager"
	slackfake "github.com/updraft-dev/updraft/emulators/slack"
	"github.com/updraft-dev/updraft/internal/slackapi/slackpost"
	"github.com/updraft-dev/updraft/internal/taskrun"
)

// StandIns are the local servers for the services Google ships no emulator for: Secret
// Manager, Slack, the Cloud Run Admin API, Cloud Logging's reads (where the Cloud Run
// stand-in's jobs write their output) and Cloud Storage (DESIGN.md's table of stand-ins).
type StandIns struct {
	Secrets  *smemu.Server
	Slack    *slackfake.Server
	CloudRun *runemu.Server
	Logging  *logemu.Server
	GCS      *gcsemu.Server // the bundle bucket
}

// StandInConfig says where the stand-ins keep their state.
type StandInConfig struct {
	// Dir holds the secrets file (kept across restarts, mode 0600) and job logs.
	Dir string
	// CloudRunJobs is a JSON file of the jobs `cloudrun.job` may run ("" or missing: none).
	CloudRunJobs string
	// SlackUsers are the fake workspace's members (owners are looked up by email).
	SlackUsers []slackfake.User
}

// StartStandIns starts every stand-in; on failure it stops what had started.
func StartStandIns(ctx context.Context, cfg StandInConfig) (*StandIns, error) {
	s := &StandIns{}
	var err error
	if err = os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	if s.Secrets, err = smemu.Start("", filepath.Join(cfg.Dir, "secrets.json")); err != nil {
		return nil, fmt.Errorf("start the Secret Manager stand-in: %w", err)
	}
	if s.Slack, err = slackfake.Start(cfg.SlackUsers); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start the fake Slack: %w", err)
	}
	jobs := runemu.Config{}
	if cfg.CloudRunJobs != "" {
		if jobs, err = runemu.LoadConfig(cfg.CloudRunJobs); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.Stop()
			return nil, err
		}
	}
	if s.Logging, err = logemu.Start(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start the Cloud Logging stand-in: %w", err)
	}
	if s.CloudRun, err = runemu.Start(jobs, filepath.Join(cfg.Dir, "cloudrun")); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start the Cloud Run stand-in: %w", err)
	}
	s.CloudRun.SetLogSink(s.Logging.Write)
	if s.GCS, err = gcsemu.Start(filepath.Join(cfg.Dir, "gcs")); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start the Cloud Storage stand-in: %w", err)
	}
	return s, nil
}

// Env is what clients and workers need to find the stand-ins. It also allow-lists loopback
// for the http types' egress policy: the stand-ins and the sample API listen on 127.0.0.1.
func (s *StandIns) Env() []string {
	return append([]string{
		taskrun.EnvHTTPAllow + "=loopback",
		smemu.EnvVar + "=" + s.Secrets.Addr,
		slackpost.EnvSlackAPIURL + "=" + s.Slack.URL,
		runemu.EnvVar + "=" + s.CloudRun.Addr,
		logemu.EnvVar + "=" + s.Logging.Addr,
	}, s.GCS.Env()...)
}

// Stop stops every stand-in that runs.
func (s *StandIns) Stop() {
	if s.GCS != nil {
		s.GCS.Stop()
	}
	if s.CloudRun != nil {
		s.CloudRun.Stop()
	}
	if s.Logging != nil {
		s.Logging.Stop()
	}
	if s.Slack != nil {
		s.Slack.Stop()
	}
	if s.Secrets != nil {
		s.Secrets.Stop()
	}
}
