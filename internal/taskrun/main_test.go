package taskrun

import (
	"os"
	"testing"

	"github.com/updraft-dev/updraft/internal/proctree"
)

func TestMain(m *testing.M) {
	proctree.Init() // this test binary supervises the shell tasks it runs
	os.Exit(m.Run())
}
