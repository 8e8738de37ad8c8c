// Command updraft-worker executes one attempt, named by UPDRAFT_ATTEMPT: the entry point of
// the worker Cloud Run jobs, and of the subprocesses the local dispatcher starts. With the
// argument `runner` it is the warm runner Cloud Run service instead: it serves HTTP on PORT
// and runs each attempt pushed to it inside the request (worker.RunRunner, docs/execution.md). It is the
// stock worker; a custom worker for `go` tasks is a main of the same shape that registers its
// functions first (package worker, docs/tasks/go.md).
package main

import "github.com/updraft-dev/updraft/worker"

func main() { worker.Main() }
