package runjobs_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/updraft-dev/updraft/internal/runjobs"
	"github.com/updraft-dev/updraft/scheduler"
)

func TestRunnerFits(t *testing.T) {
	t.Parallel()
	cfg, ok, err := runjobs.RunnerConfigFromEnv(mapEnv{"GOOGLE_CLOUD_PROJECT": "p", runjobs.EnvRunnerTopic: "updraft-runner",
		runjobs.EnvRunnerShape: "cpu=2,memory=4Gi", runjobs.EnvRunnerClasses: "small, medium"}.get)
	if err != nil || !ok {
		t.Fatalf("config: %v %v", ok, err)
	}
	for _, c := range []struct {
		name    string
		msg     scheduler.TaskMessage
		fits    bool
		because string
	}{
		{"default class with a timeout", scheduler.TaskMessage{Type: "shell", TimeoutSeconds: 60}, true, ""},
		{"a class it stands in for", scheduler.TaskMessage{Resources: "medium", TimeoutSeconds: 60}, true, ""},
		{"the longest timeout", scheduler.TaskMessage{TimeoutSeconds: 540}, true, ""},
		{"a shape within its own", scheduler.TaskMessage{Resources: "cpu=2,memory=4Gi", TimeoutSeconds: 60}, true, ""},
		{"no timeout", scheduler.TaskMessage{}, false, "no timeout"},
		{"a longer timeout", scheduler.TaskMessage{TimeoutSeconds: 541}, false, "over the runner's 9m0s"},
		{"executor: job", scheduler.TaskMessage{Executor: "job", TimeoutSeconds: 60}, false, "executor: job"},
		{"another class", scheduler.TaskMessage{Resources: "large", TimeoutSeconds: 60}, false, "resource class large"},
		{"more cpu", scheduler.TaskMessage{Resources: "cpu=4,memory=4Gi", TimeoutSeconds: 60}, false, "exceed the runner's cpu=2,memory=4Gi"},
		{"more memory", scheduler.TaskMessage{Resources: "cpu=1,memory=8Gi", TimeoutSeconds: 60}, false, "exceed"},
	} {
		fits, why := cfg.Fits(c.msg)
		if fits != c.fits || !strings.Contains(why, c.because) {
			t.Errorf("%s: fits %v (%q); want %v (%q)", c.name, fits, why, c.fits, c.because)
		}
	}
}

func TestRunnerConfigFromEnv(t *testing.T) {
	t.Parallel()
	if _, ok, err := runjobs.RunnerConfigFromEnv(mapEnv{"GOOGLE_CLOUD_PROJECT": "p"}.get); ok || err != nil {
		t.Fatalf("no topic: ok %v, %v; want no runner", ok, err)
	}
	cfg, ok, err := runjobs.RunnerConfigFromEnv(mapEnv{"GOOGLE_CLOUD_PROJECT": "p", runjobs.EnvRunnerTopic: "t"}.get)
	if !ok || err != nil || cfg.Shape.String() != "cpu=1,memory=512Mi" || cfg.MaxTimeout != runjobs.RunnerMaxTimeout || len(cfg.Classes) != 1 || cfg.Classes[0] != "small" {
		t.Fatalf("defaults: %+v %v %v", cfg, ok, err)
	}
	for k, v := range map[string]string{
		runjobs.EnvRunnerShape:      "4 cpus",
		runjobs.EnvRunnerMaxTimeout: "11m",
	} {
		_, _, err := runjobs.RunnerConfigFromEnv(mapEnv{"GOOGLE_CLOUD_PROJECT": "p", runjobs.EnvRunnerTopic: "t", k: v}.get)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v; want an error naming %s", k, v, err, k)
		}
	}
}

type mapEnv map[string]string

func (m mapEnv) get(k string) string { return m[k] }

func TestRunnerStartIsLiveWhileRecent(t *testing.T) {
	t.Parallel()
	s := (*runjobs.Runner)(nil).For(scheduler.TaskMessage{Type: "shell"})
	name := func(ago time.Duration) string {
		return runjobs.RunnerRefPrefix + "42@" + strconv.FormatInt(time.Now().Add(-ago).UnixMilli(), 10)
	}
	for _, c := range []struct {
		name string
		live bool
	}{
		{name(time.Minute), true},
		{name(runjobs.RunnerPending + time.Minute), false},
		{runjobs.RunnerPending.String(), false},
		{runjobs.RunnerRefPrefix + "42", false},
		{runjobs.RunnerRefPrefix + "42@soon", false},
		{"projects/p/locations/l/jobs/j/executions/j-x", false},
	} {
		if live, err := s.Alive(context.Background(), c.name); live != c.live || err != nil {
			t.Errorf("Alive(%q) = %v, %v; want %v", c.name, live, err, c.live)
		}
	}
}
