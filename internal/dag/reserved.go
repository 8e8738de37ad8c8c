package dag

import "strings"

// ReservedSecretPrefix starts the names of Updraft's own secrets (the Slack signing secret,
// the UI's CSRF key). It deliberately does not start with "updraft-": the task accounts'
// Secret Manager grant is on the "updraft-" prefix, so they hold no grant on these, and the
// template functions refuse them too (docs/security.md).
const ReservedSecretPrefix = "updraftsys-"

// legacyReserved are the names Updraft's own secrets had before they moved under
// ReservedSecretPrefix. A deployment that still holds them must not hand them to a DAG.
var legacyReserved = []string{"updraft-slack-signing-secret", "updraft-csrf-secret"}

// ReservedSecret reports whether name is one of Updraft's own secrets, which DAG templates
// and task types may not read.
func ReservedSecret(name string) bool {
	if strings.HasPrefix(name, ReservedSecretPrefix) {
		return true
	}
	for _, n := range legacyReserved {
		if name == n {
			return true
		}
	}
	return false
}

// ReservedSecretError is the error a refused read of one of Updraft's own secrets gives.
func ReservedSecretError(name string) error {
	return &reservedErr{name}
}

type reservedErr struct{ name string }

func (e *reservedErr) Error() string {
	return "secret " + quoteShort(e.name) + " is one of Updraft's own (names starting with " + ReservedSecretPrefix +
		", and the Slack signing secret and CSRF key): DAGs may not read it; give your task its own secret, e.g. updraft-" +
		strings.TrimPrefix(strings.TrimPrefix(e.name, ReservedSecretPrefix), "updraft-")
}
