package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// The scoping mesh of TestScopedProxies: Alpha in namespace alpha on port
// PA, exported to alpha and gamma; Beta in namespace beta on port PB,
// exported to all; Gamma, gamma's own, on both ports (so that neither
// port is one service's alone, which would route any service name to it).
// alpha's Sidecar lets it call its own namespace only.
const scopingConfig = `apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: alpha, namespace: alpha}
spec:
  hosts: [com.example.Alpha]
  exportTo: [".", gamma]
  ports: [{number: %[1]s, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %[3]s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: beta, namespace: beta}
spec:
  hosts: [com.example.Beta]
  ports: [{number: %[2]s, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %[4]s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: gamma, namespace: gamma}
spec:
  hosts: [com.example.Gamma]
  exportTo: ["."]
  ports: [{number: %[1]s, name: pa, protocol: dubbo}, {number: %[2]s, name: pb, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {pa: %[3]s, pb: %[4]s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: Sidecar
metadata: {name: default, namespace: alpha}
spec:
  egress: [{hosts: ["./*"]}]
`

// TestScopedProxies runs one `metamesh controlplane` and two `metamesh
// proxy` processes whose node IDs put them in namespaces alpha and beta;
// real dubbo-go consumers call through each. Each proxy routes what its
// namespace sees (alpha: Alpha; beta: Beta) and answers a call for any
// other service, which the mesh defines but hides from it (Beta by
// alpha's Sidecar, Alpha by its exportTo, Gamma by its exportTo), with
// Dubbo's no-route reply. Each proxy listens only on its own view's port:
// two proxies on one host, which would otherwise both bind every port.
func TestScopedProxies(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	alphaSvc := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "alpha", Interface: "com.example.Alpha"})
	betaSvc := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "beta", Interface: "com.example.Beta"})
	pa, pb := harness.FreeAddr(t), harness.FreeAddr(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(scopingConfig, portOf(pa), portOf(pb), portOf(alphaSvc.Addr), portOf(betaSvc.Addr))
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	xdsAddr, cpAdmin := harness.FreeAddr(t), harness.FreeAddr(t)
	harness.StartProcess(t, "metamesh controlplane", bin, "controlplane", "--config", dir, "--xds", xdsAddr, "--admin", cpAdmin,
		"--listen-address", "127.0.0.1", "--log-format", "json", "--insecure")
	waitFor(t, 20*time.Second, "the control plane's /ready", func() bool { return ready(t, cpAdmin) })
	for _, node := range []string{"consumer-1.alpha", "consumer-1.beta"} {
		admin := harness.FreeAddr(t)
		harness.StartProcess(t, "metamesh proxy "+node, bin, "proxy", "--xds", xdsAddr, "--node", node, "--admin", admin,
			"--log-format", "json", "--insecure")
		waitFor(t, 20*time.Second, node+"'s /ready", func() bool { return ready(t, admin) })
	}
	for _, addr := range []string{pa, pb} {
		waitFor(t, 10*time.Second, "the listener on "+addr, func() bool {
			nc, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				nc.Close()
			}
			return err == nil
		})
	}

	for _, c := range []struct {
		proxy, addr, iface string
		want               string // the provider's version, or "no route"
	}{
		{"alpha", pa, "com.example.Alpha", "alpha"},
		{"alpha", pa, "com.example.Beta", "no route"},
		{"alpha", pa, "com.example.Gamma", "no route"},
		{"beta", pb, "com.example.Beta", "beta"},
		{"beta", pb, "com.example.Alpha", "no route"},
		{"beta", pb, "com.example.Gamma", "no route"},
	} {
		t.Run(c.proxy+" calls "+c.iface, func(t *testing.T) {
			cl, err := dubboclient.New(c.addr, c.iface)
			if err != nil {
				t.Fatalf("dubbo-go client: %v", err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := cl.SayHello(ctx, "x")
			switch {
			case c.want == "no route":
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("no route for service %q", c.iface)) {
					t.Fatalf("reply %q, err %v: want the proxy's no-route error naming %s", got, err, c.iface)
				}
			case err != nil || got != c.want+"|x":
				t.Fatalf("reply %q, err %v: want %s's", got, err, c.want)
			}
		})
	}
}
