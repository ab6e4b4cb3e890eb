package xdsapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The control plane and the proxy share this package and nothing else:
// no control-plane package may depend on the data plane (proxy/...).
func TestControlPlaneDoesNotImportProxy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/metamesh/metamesh/controlplane/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list found %d packages, want the control plane's dependencies", len(deps))
	}
	for _, p := range deps {
		if p == "github.com/metamesh/metamesh/proxy" || strings.HasPrefix(p, "github.com/metamesh/metamesh/proxy/") {
			t.Errorf("a control-plane package depends on %s; share types through crds/xdsapi instead", p)
		}
	}
}
