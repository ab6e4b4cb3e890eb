package xds_test

import (
	"os"
	"testing"

	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
)

// TestMain runs the tests, or the simulated sidecars of a benchmark in a
// process of their own (fleetMain) when the benchmark starts the test
// binary as such.
func TestMain(m *testing.M) {
	if os.Getenv(fleetEnv) != "" {
		os.Exit(fleetMain())
	}
	kubetest.Main(m)
}
