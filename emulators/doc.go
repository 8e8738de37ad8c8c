// Package emulators starts and stops the official Google Cloud Firestore and
// Pub/Sub emulators (the ones shipped with the gcloud SDK) for local
// development and tests.
//
// The emulators are JVM programs. This package runs java directly (not the
// SDK's wrapper scripts, which would leave the JVM orphaned when killed), each
// emulator in its own process group, bound to 127.0.0.1 on free ports chosen
// at start-up. Readiness is detected by polling the emulator's HTTP endpoint
// (GET / answers "Ok"); nothing sleeps for a fixed time.
//
// Typical use in tests is through the emutest sub-package:
//
//	func TestMain(m *testing.M) { emutest.Main(m) }
//
// and from the command line:
//
//	go run ./emulators/cmd/emulators          # start both, print exports, Ctrl-C stops
//	go run ./emulators/cmd/emulators check    # tell what is missing
//
// Environment variables read by this package:
//
//   - UPDRAFT_GCLOUD_SDK_ROOT: the gcloud SDK root (default: found via gcloud).
//   - JAVA_HOME: java is $JAVA_HOME/bin/java when set, else java from PATH.
//   - UPDRAFT_EMULATOR_JAVA_OPTS: extra JVM flags, appended after the defaults.
//   - UPDRAFT_EMULATOR_CDS=0: disable the class-data-sharing archive cache
//     (kept under os.UserCacheDir()/updraft/emulators-cds; it halves JVM
//     start-up time).
//   - FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST: see FromEnv.
package emulators
