// Package runemu is a local stand-in for the parts of the Cloud Run Admin API v2 that Updraft
// uses, since Google ships no Cloud Run emulator. It serves gRPC on 127.0.0.1, so the official
// client (cloud.google.com/go/run/apiv2) talks to it unchanged:
//
//	jobs, err := run.NewJobsClient(ctx,
//		option.WithEndpoint(srv.Addr),
//		option.WithoutAuthentication(),
//		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
//
// What it serves:
//
//   - Jobs: GetJob, CreateJob and RunJob. CreateJob takes a job whose one container has a
//     command (the stand-in runs commands, not images) and checks its cpu and memory limits
//     against Cloud Run's allowed combinations; its operation is done at once. RunJob returns a long-running operation whose metadata is the
//     Execution and whose response, once the execution has finished, is the Execution.
//   - Executions: GetExecution, ListExecutions and CancelExecution. An execution's template
//     shows the env the run's overrides gave it (Updraft finds executions by the attempt id
//     it puts there); ExecutionCount and ExecutionStates let tests count what ran.
//   - google.longrunning.Operations: GetOperation and WaitOperation, so op.Wait works.
//
// There are no images: what a job runs is configured (Config, SetJob, LoadConfig) as a command,
// an environment and a timeout per job id, in any project and location. RunJob starts the
// command as a subprocess in its own process group, as one task (task_count is always 1, with
// no task retries), with:
//
//   - argv: JobSpec.Command models a container's entrypoint and args: Command[0] is the
//     entrypoint and Command[1:] the args. As in Cloud Run, an override's non-empty args REPLACE
//     the args (everything after Command[0]), and clear_args drops them; the entrypoint stays.
//   - env: the emulator's own environment, then JobSpec.Env, then the override's env (later
//     wins), then CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX=0,
//     CLOUD_RUN_TASK_ATTEMPT=0 and CLOUD_RUN_TASK_COUNT=1, as Cloud Run sets them.
//   - timeout: the override's timeout, else JobSpec.Timeout, else Cloud Run's default of
//     10 minutes. When it is reached (or the execution is cancelled) the process group gets
//     SIGTERM, then SIGKILL after Config.KillGrace (default 10 s). When the task's main process
//     exits, whatever is left of its group is killed, as when a container stops.
//   - logs: stdout and stderr go to LogDir/<job>/<execution>.log; log_uri is its file:// URL.
//     With SetLogSink they also go, line by line, to a Cloud Logging stand-in
//     (emulators/logging) with Cloud Run's log names, resource and labels (logs.go).
//
// The execution ends with a "Completed" condition: CONDITION_SUCCEEDED on exit code 0;
// CONDITION_FAILED with reason NON_ZERO_EXIT_CODE and the message
// "Task <execution>-task0 failed with message: The container exited with exit code 3." on a
// non-zero exit; CONDITION_FAILED with "... The configured timeout was reached." on timeout;
// CONDITION_FAILED with reason CANCELLED after CancelExecution (cancelled_count is then 1). The
// RunJob operation of a failed execution ends with an error status (code UNKNOWN, the
// condition's message; the real API does not document the code) and keeps the Execution in its
// metadata; a succeeded or cancelled one ends with the Execution as its response.
//
// Processes are only ever signalled by process group id while their leader is known not to be
// reaped yet (on Linux the waiter waits with WNOWAIT first), so a recycled pid is never hit. On
// Linux each process also gets Pdeathsig=SIGKILL, so a crashed test binary leaves no leader
// behind.
//
// Services: StartService (service.go) runs a stand-in Cloud Run service with one instance, a
// command serving HTTP on a loopback port the stand-in binds and passes to it as fd 3
// (LISTEN_FDS=1, PORT set), replaced when it exits as Cloud Run replaces a crashed instance;
// Crash kills the instance's main process alone (tests of what dies with it), Stop stops it
// with SIGTERM then SIGKILL. Updraft's warm runner runs on it locally.
//
// It stands in for Google's service, not for Updraft code: it speaks the Go SDK's protos and
// gRPC. Its import rules are rows of the table in internal/layers (rules.go).
package runemu
