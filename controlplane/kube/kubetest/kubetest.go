// Package kubetest gives tests a real kube-apiserver and etcd (controller-
// runtime's envtest), one per test binary, started by the first test that
// asks and stopped by Stop in TestMain. The binaries come from
// KUBEBUILDER_ASSETS (`make envtest` prepares them); without it, tests skip.
package kubetest

import (
	"os"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// startAttempts and startRetryPause (doubled after each attempt: 5, 10,
// 20 s) bound how long Config tries to start the API server when envtest
// fails to.
const (
	startAttempts   = 4
	startRetryPause = 5 * time.Second
)

var (
	once     sync.Once
	env      *envtest.Environment
	cfg      *rest.Config
	startErr error
)

// Config returns an admin config for the test API server, starting it with
// the CRDs found in crdDirs (YAML files) installed, on the first call.
// Later calls get the same server; their crdDirs are ignored.
func Config(t testing.TB, crdDirs ...string) *rest.Config {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS unset: run make envtest")
	}
	once.Do(func() {
		// envtest picks each port by listening on port 0, closing, and
		// locking a file per port shared by every envtest process on
		// the machine. In CI it once found no free port in 100 tries
		// while other tests had used up most ephemeral ports (the
		// kernel then hands out the same few). Ports come back as
		// connections leave TIME_WAIT: wait and try again before
		// failing every test that needs the API server.
		for attempt := 1; ; attempt++ {
			env = &envtest.Environment{CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: len(crdDirs) > 0}
			cfg, startErr = env.Start()
			if startErr == nil || attempt == startAttempts {
				return
			}
			t.Logf("kubetest: start attempt %d of %d: %v; retrying in %v", attempt, startAttempts, startErr, startRetryPause<<(attempt-1))
			if err := env.Stop(); err != nil { // whatever half started
				t.Logf("kubetest: stop after the failed start: %v", err)
			}
			time.Sleep(startRetryPause << (attempt - 1))
		}
	})
	if startErr != nil {
		t.Fatalf("start kube-apiserver and etcd from KUBEBUILDER_ASSETS=%s: %v", os.Getenv("KUBEBUILDER_ASSETS"), startErr)
	}
	return rest.CopyConfig(cfg)
}

// KubeConfig is Config as a kubeconfig file's content (the admin user),
// for a process the test starts (`metamesh controlplane --kubeconfig`).
func KubeConfig(t testing.TB, crdDirs ...string) []byte {
	t.Helper()
	Config(t, crdDirs...)
	return env.KubeConfig
}

// Stop stops the API server and etcd if a test started them.
func Stop() error {
	if env == nil || startErr != nil {
		return nil
	}
	return env.Stop()
}

// Main runs the tests and stops the API server; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil && code == 0 {
		os.Stderr.WriteString("kubetest: stop: " + err.Error() + "\n")
		code = 1
	}
	os.Exit(code)
}
