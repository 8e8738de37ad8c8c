// Package core is a fake pure core that breaks its rule twice: it imports a fake SDK and
// does network I/O.
package core

import (
	"net/http"

	"example.com/fake/sdk"
)

// Get fetches through the fake SDK.
var Get = []any{http.Get, sdk.Client}
