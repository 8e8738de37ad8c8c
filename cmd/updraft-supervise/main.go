// Command updraft-supervise is the supervisor of a task's process tree (internal/proctree),
// as a binary of its own. A worker that finds it next to its own executable runs it for each
// shell attempt instead of re-executing itself: this binary links only proctree and the
// standard library, so it starts in about a millisecond where the worker binary spends tens
// of milliseconds of CPU initialising its cloud SDKs. Without it the worker re-executes
// itself, with the same guarantees. It is started by proctree.Start only; run by hand it
// exits with status 2.
package main

import (
	"fmt"
	"os"

	"github.com/updraft-dev/updraft/internal/proctree"
)

func main() {
	proctree.Init() // supervises and exits when started by proctree.Start
	fmt.Fprintln(os.Stderr, "updraft-supervise: the supervisor of a task's process tree; started by an Updraft worker only")
	os.Exit(2)
}
