#!/usr/bin/env bash
# Usage: emulators/start.sh [start|firestore|pubsub|check]
#
# Thin wrapper around `go run ./emulators/cmd/emulators` (see README.md):
#   start      both emulators (default); prints the export lines; Ctrl-C stops them
#   firestore  only the Firestore emulator
#   pubsub     only the Pub/Sub emulator
#   check      exit 1 with what to install if java or an emulator is missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# exec: the Go program receives the signals itself (go run does not forward
# SIGTERM, but the program stops when go run dies).
exec go run ./emulators/cmd/emulators "$@"
