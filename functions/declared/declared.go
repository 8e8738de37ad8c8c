// Package declared registers Updraft's functions with the Functions Framework by name, the
// framework's declarative convention (its one allowed init registry): Dispatch, Advance,
// Alerts and SlackActions, each built from the process environment on its first request
// (functions.Lazy). Import it for its side effect in a main that calls funcframework.Start,
// as the Functions Framework's buildpack does:
//
//	import _ "github.com/updraft-dev/updraft/functions/declared"
//
// cmd/updraft-functions does not import it: it builds its one target eagerly
// (functions.NewHandler) so it can wrap it, and a name registered here would shadow it.
package declared

import (
	"log/slog"
	"os"

	ff "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/updraft-dev/updraft/functions"
)

func init() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	for _, target := range functions.Targets {
		ff.HTTP(target, functions.Lazy(target, os.Getenv, log).ServeHTTP)
	}
}
