package cli

import (
	"strings"
	"testing"
)

// TestDevRefusesANonLoopbackAddrWithoutTheFlag: auth is off under updraft dev, so listening
// beyond this machine takes --allow-remote, and then a warning says what it means.
func TestDevRefusesANonLoopbackAddrWithoutTheFlag(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8080"} {
		_, errOut, code := run(t, nil, "dev", "--addr", addr, t.TempDir())
		if code == 0 || !strings.Contains(errOut, "--allow-remote") || !strings.Contains(errOut, "auth off") {
			t.Errorf("dev --addr %s: exit %d, %q; want a refusal naming --allow-remote", addr, code, errOut)
		}
	}
	// With the flag, the warning comes first; the run then stops at the missing DAG folder.
	_, errOut, _ := run(t, nil, "dev", "--addr", "0.0.0.0:0", "--allow-remote", "no-such-dir")
	if !strings.Contains(errOut, "WARNING") || !strings.Contains(errOut, "auth OFF") || !strings.Contains(errOut, "no-such-dir") {
		t.Errorf("dev --allow-remote: %q; want the auth-off warning", errOut)
	}
}
