package cli

import (
	"fmt"
	"os"
	"testing"
)

// TestMain keeps the roots the control planes of these tests make (file
// mode: $XDG_CONFIG_HOME/metamesh/ca, docs/identity.md) out of the
// user's home.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "metamesh-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
