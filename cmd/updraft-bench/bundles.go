package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	gcsemu "github.com/updraft-dev/updraft/emulators/gcs"
	"github.com/updraft-dev/updraft/internal/bundle"
	"github.com/updraft-dev/updraft/internal/cli"
	"github.com/updraft-dev/updraft/internal/dag"
	"github.com/updraft-dev/updraft/internal/gcsbundles"
	"github.com/updraft-dev/updraft/internal/local"
)

// bundles measures code delivery: the time from an attempt's claim to the first line of a
// python task's function, with the bundle not yet on the machine (cold: fetched from the GCS
// stand-in, verified, unpacked) and cached (warm); and `updraft dags deploy` of a generated
// folder of 700 DAGs sharing a helper module.
func (b *bench) bundles() {
	gcs, err := gcsemu.Start("")
	must(err)
	defer gcs.Stop()
	for _, kv := range gcs.Env() {
		k, v, _ := strings.Cut(kv, "=")
		must(os.Setenv(k, v))
	}
	store, err := gcsbundles.Open(b.ctx, gcsemu.Bucket)
	must(err)
	defer store.Close()

	// Claim → first line: the function returns time.time() as its first statement.
	src := t0("bench_python") + "  - {id: py, type: python, with: {callable: lib.first:now}}\n"
	dir, err := os.MkdirTemp("", "updraft-bench-bundle-")
	must(err)
	defer os.RemoveAll(dir)
	writeFiles(dir, map[string]string{
		"bench_python.yaml": src,
		"lib/first.py":      "import time\n\n\ndef now():\n    return time.time()\n",
		"lib/padding.py":    strings.Repeat("# a module of a realistic size\n", 2000),
	})
	bd, err := bundle.Build(dir)
	must(err)
	must(store.Put(b.ctx, bd.Hash, bd.Archive))
	d, err := dag.Parse(filepath.Join(dir, "bench_python.yaml"), []byte(src), dag.Options{})
	must(err)
	must(bundle.Pin(d, dir, bd.Hash))
	cache, err := os.MkdirTemp("", "updraft-bench-cache-")
	must(err)
	defer os.RemoveAll(cache)
	st, stop := b.bundleStack(append(gcs.Env(), bundle.EnvCache+"="+cache))
	defer stop()
	_, err = st.Engine.Deploy(b.ctx, d, []byte(src))
	must(err)
	firstLine := func() float64 {
		r, _ := b.runDAG(st, "bench_python")
		a := b.attempt(st, r, "py")
		raw, err := st.Engine.XCom(b.ctx, r.DagID, r.RunID, "py")
		must(err)
		var at float64
		must(json.Unmarshal(raw, &at))
		return float64(time.Unix(0, int64(at*1e9)).Sub(a.StartedAt)) / 1e6
	}
	var cold, warm []float64
	for range b.runs {
		must(os.RemoveAll(filepath.Join(cache, bd.Hash)))
		cold = append(cold, firstLine())
		warm = append(warm, firstLine())
	}
	b.add(fmt.Sprintf("`python` task: attempt claimed → function's first line, bundle cold (fetch %s from the GCS stand-in, verify, unpack)", humanKB(len(bd.Archive))), ms(median(cold)), "")
	b.add("`python` task: attempt claimed → function's first line, bundle cached", ms(median(warm)), "")

	// A 700-DAG folder: each DAG a shell task and a python task using the shared helper.
	big, err := os.MkdirTemp("", "updraft-bench-700-")
	must(err)
	defer os.RemoveAll(big)
	files := map[string]string{
		"lib/__init__.py": "",
		"lib/helpers.py":  "def load(table, context):\n    return {'table': table, 'ds': context['ds']}\n",
		"scripts/run.sh":  "#!/bin/sh\necho ok\n",
	}
	for i := range 700 {
		files[fmt.Sprintf("team%02d/dag_%03d.yaml", i%20, i)] = fmt.Sprintf(`id: dag_%03d
owner: team%02d@example.com
schedule: "%d %d * * *"
tasks:
  - {id: extract, type: shell, with: {command: "echo {{ .ds }}"}}
  - {id: load, type: python, needs: [extract], with: {callable: lib.helpers:load, kwargs: {table: t_%03d}}}
`, i, i%20, i%60, i%24, i)
	}
	writeFiles(big, files)
	deploy := func() float64 {
		project := fmt.Sprintf("bench-%d-%d", os.Getpid(), b.seq.Add(1))
		env := map[string]string{"GOOGLE_CLOUD_PROJECT": project, "UPDRAFT_HOME": big + "-home"}
		for _, kv := range append(b.set.Env(), gcs.Env()...) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		var out, errb bytes.Buffer
		app := &cli.App{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
		t := time.Now()
		if code := app.Run(context.Background(), []string{"dags", "deploy", big}); code != 0 {
			must(fmt.Errorf("dags deploy: %s %s", out.String(), errb.String()))
		}
		return time.Since(t).Seconds()
	}
	var builds, deploys []float64
	for range b.runs {
		t := time.Now()
		bb, err := bundle.Build(big)
		must(err)
		must(store.Put(b.ctx, bb.Hash, bb.Archive))
		builds = append(builds, time.Since(t).Seconds()*1000)
		deploys = append(deploys, deploy())
	}
	b.add(fmt.Sprintf("700-DAG folder (%d files): bundle built and stored", len(files)), ms(median(builds)), "")
	b.add("700-DAG folder: `updraft dags deploy` (validate with file checks, bundle, 700 versions) on a fresh project", secs(median(deploys)), "")
}

// bundleStack is b.stack with more environment for the workers.
func (b *bench) bundleStack(extra []string) (*local.Stack, func()) {
	project := fmt.Sprintf("bench-%d-%d", os.Getpid(), b.seq.Add(1))
	ctx, cancel := context.WithCancel(b.ctx)
	st, err := local.Open(ctx, local.Config{
		Project: project, Env: append(b.set.Env(), extra...), LogDir: filepath.Join(os.TempDir(), "updraft-bench-logs"),
		WorkerCmd: []string{filepath.Join(b.bin, "updraft"), "worker"}, MaxWorkers: 8, Log: b.log, WorkerStderr: b.workerIO,
	})
	must(err)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(ctx) }()
	return st, func() { cancel(); <-done; st.Close() }
}

func t0(id string) string { return "id: " + id + "\nowner: bench@example.com\ntasks:\n" }

func writeFiles(dir string, files map[string]string) {
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		must(os.WriteFile(p, []byte(body), mode))
	}
}

func humanKB(n int) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }
