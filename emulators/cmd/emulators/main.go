// Command emulators runs the local Firestore and Pub/Sub emulators.
//
//	go run ./emulators/cmd/emulators [-log-dir DIR] [start|firestore|pubsub|check]
//
// start (the default) starts both emulators on free 127.0.0.1 ports, prints
//
//	export FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT
//	export PUBSUB_EMULATOR_HOST=127.0.0.1:PORT
//
// on stdout (everything else goes to stderr), and runs until SIGINT, SIGTERM
// or SIGHUP, then stops the emulators' process groups and exits 0. If an
// emulator dies on its own, the other is stopped and the exit status is 1.
// firestore and pubsub start only that emulator.
//
// check reports whether java and both emulators are installed; when not, it
// prints exactly what to install and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/updraft-dev/updraft/emulators"
)

func main() {
	logDir := flag.String("log-dir", "", "directory for the emulators' logs (default: a new temporary directory)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: emulators [-log-dir DIR] [start|firestore|pubsub|check]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	cmd := "start"
	switch flag.NArg() {
	case 0:
	case 1:
		cmd = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	switch cmd {
	case "check":
		os.Exit(check())
	case "start", "firestore", "pubsub":
		os.Exit(run(cmd, *logDir))
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func check() int {
	if err := emulators.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "The local GCP emulators cannot run:\n%v\n", err)
		return 1
	}
	root, _ := emulators.SDKRoot()
	fmt.Printf("ok: java, Firestore emulator and Pub/Sub emulator %s found (gcloud SDK at %s)\n", emulators.PubSubVersion(), root)
	return 0
}

func run(which, logDir string) int {
	dieWithGoRun()
	if err := emulators.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "The local GCP emulators cannot run:\n%v\n", err)
		return 1
	}
	// Registered before starting so that a signal during start-up aborts
	// it (and stops whatever had started).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopSig := make(chan os.Signal, 1)
	go func() {
		sig := <-sigs
		stopSig <- sig
		cancel()
	}()

	t0 := time.Now()
	var ems []*emulators.Emulator
	switch which {
	case "start":
		set, err := emulators.StartAll(ctx, logDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ems = []*emulators.Emulator{set.Firestore, set.PubSub}
	case "firestore", "pubsub":
		start := emulators.StartFirestore
		if which == "pubsub" {
			start = emulators.StartPubSub
		}
		e, err := start(ctx, logDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ems = []*emulators.Emulator{e}
	}
	for _, e := range ems {
		env := emulators.FirestoreHostEnv
		if e.Name == "pubsub" {
			env = emulators.PubSubHostEnv
		}
		fmt.Printf("export %s=%s\n", env, e.Host)
	}
	for _, e := range ems {
		fmt.Fprintf(os.Stderr, "%s emulator: pid %d (process group), %s, log %s\n", e.Name, e.PID(), e.Host, e.LogPath)
	}
	fmt.Fprintf(os.Stderr, "ready in %.1fs; Ctrl-C (SIGINT) or SIGTERM stops the emulators\n", time.Since(t0).Seconds())

	died := make(chan *emulators.Emulator, len(ems))
	for _, e := range ems {
		go func() {
			<-e.Done()
			died <- e
		}()
	}
	code := 0
	select {
	case sig := <-stopSig:
		fmt.Fprintf(os.Stderr, "%v: stopping emulators\n", sig)
	case e := <-died:
		fmt.Fprintf(os.Stderr, "%s emulator died; stopping\n", e.Name)
		code = 1
	}
	for _, e := range ems {
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		fmt.Fprintln(os.Stderr, "emulators stopped")
	}
	return code
}
