// Package proctree runs a command so that its whole process tree ends with it: when the
// command exits, when the caller stops it (a timeout, a cancelled attempt), and when the
// process that started it dies, even by SIGKILL. It is how a worker makes a task's processes
// die with the task and with the worker, including descendants that called setsid or started
// their own process group (a process group kill does not reach those).
//
// # Design
//
// Start does not run the command itself. It starts a tiny supervisor, in its own process
// group: the dedicated `updraft-supervise` binary (cmd/updraft-supervise) when Init found one
// next to the running executable, else the running binary re-executed (/proc/self/exe). The
// dedicated one costs about a millisecond to start against tens of milliseconds of CPU for a
// worker binary that links every cloud SDK, and a local worker starts one per shell attempt.
// The supervisor:
//
//   - marks itself a child subreaper (PR_SET_CHILD_SUBREAPER), so every descendant that is
//     orphaned (a daemonising double fork, `setsid cmd &` whose shell exited) is reparented
//     to it instead of to init, and stays findable;
//   - learns of its starter's death two ways: the read end of a control pipe whose only
//     write end the starter holds (EOF when the starter exits, however it dies), and
//     Pdeathsig = SIGTERM (Start locks its OS thread around the fork: Pdeathsig fires when
//     the forking thread ends, golang/go#27505);
//   - runs the command in its own process group and reaps every child that reaches it;
//   - when the command exits, when the control pipe closes (the starter's Stop, or its
//     death) or on SIGTERM/SIGINT/SIGHUP, SIGKILLs the command's process group and every
//     descendant it can find by walking /proc (children of the subreaper and their
//     children), again and again until none is left, then exits mirroring the command's
//     status (its exit code, or death by the same signal).
//
// So a task's processes never outlive the task: background children still running when the
// command exits are killed too, as when a Cloud Run job's container ends. The supervisor is
// found again by its command line (`updraft-supervise <starter's ref> …`, see Supervisors),
// which is how the local executor makes sure a dead worker's processes are gone before the
// attempt is retried. No cgroup is needed (nor used).
//
// A binary can act as the supervisor only if its main (or TestMain) calls Init first: Init
// turns the re-executed process into the supervisor and never returns there. A process that
// did not call Init runs commands directly (Setpgid, Pdeathsig = SIGKILL on the command, and
// the same /proc walk on stop), which still kills a timed-out tree but leaves setsid
// descendants behind when the starter is killed; Available says which mode applies.
//
// The package uses Linux's /proc and prctl; elsewhere only the direct mode exists. Its import
// rules are rows of the table in internal/layers (rules.go).
package proctree
