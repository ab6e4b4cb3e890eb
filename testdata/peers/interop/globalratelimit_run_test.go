package interop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// aerakiLimitTmpl is a config folder as an Aeraki user brings it: Aeraki's
// demo MetaRouter with its globalRateLimit, unchanged, beside
// ServiceEntries for the Dubbo service and for the rate-limit service
// (gRPC, a port metamesh doesn't proxy).
var aerakiLimitTmpl = template.Must(template.New("").Parse(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greetings, namespace: meta-dubbo}
spec:
  hosts: [{{.Iface}}]
  ports: [{number: {{.Port}}, name: dubbo, protocol: dubbo}]
  endpoints:
  - {address: 127.0.0.1, ports: {dubbo: {{.V1}}}}
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: rate-limit-server, namespace: istio-system}
spec:
  hosts: [rate-limit-server.istio-system.svc.cluster.local]
  exportTo: ["."]
  ports: [{number: {{.RLSPort}}, name: grpc, protocol: grpc}]
  endpoints:
  - {address: 127.0.0.1}
---
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: {name: test-metaprotocol-dubbo-route, namespace: meta-dubbo}
spec:
  hosts:
  - {{.Iface}}
  globalRateLimit:
    domain: production
    match:
      attributes:
        method:
          exact: sayHello
    rateLimitService: {{.Service}}
    requestTimeout: 2s
    denyOnFail: {{.Deny}}
    descriptors:
    - property: method
      descriptorKey: method
`))

type aerakiLimit struct {
	Iface, Port, V1, RLSPort, Service string
	Deny                              bool
	dir, listen, admin                string
	stderr                            *harness.SyncBuffer
}

func (c *aerakiLimit) write(t *testing.T) {
	t.Helper()
	var buf bytes.Buffer
	if err := aerakiLimitTmpl.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, ".limit.yaml.tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "limit.yaml")); err != nil {
		t.Fatal(err)
	}
}

// TestGlobalRateLimitFromMetaRouter: the limit of
// TestGlobalRateLimitDubbo (Envoy's rate-limit service on a real
// redis-server, sayHello 10 a minute), this time written as Aeraki's
// MetaRouter in the config folders of two `metamesh run` processes, so
// that it reaches the proxies through the control plane's translation. Of
// 30 dubbo-go calls through the two, exactly 10 pass and 20 are rate
// limited. An edit naming a service no ServiceEntry defines is refused
// with the field, and the limit in force stays. With the service stopped,
// a call passes (fail-open), and a third process whose MetaRouter says
// denyOnFail refuses it.
func TestGlobalRateLimitFromMetaRouter(t *testing.T) {
	red := redispeer.Start(t)
	rls := harness.StartRateLimitServer(t, red.Addr, rlsConfig)
	bin := harness.BuildMetamesh(t)
	v1, _ := greeters(t)
	const rlsHost = "rate-limit-server.istio-system.svc.cluster.local"
	service := "outbound|" + portOf(rls.Addr) + "||" + rlsHost
	var runs [3]*aerakiLimit
	var clients [3]*dubboclient.Client
	for i := range runs {
		c := &aerakiLimit{Iface: iface, V1: portOf(v1.Addr), RLSPort: portOf(rls.Addr), Service: service, Deny: i == 2,
			dir: t.TempDir(), listen: harness.FreeAddr(t), admin: harness.FreeAddr(t), stderr: &harness.SyncBuffer{}}
		c.Port = portOf(c.listen)
		c.write(t)
		startRun(t, bin, c.dir, c.admin, c.listen, c.stderr)
		runs[i], clients[i] = c, newClient(t, c.listen, dubboclient.Options{})
	}
	ctx := context.Background()

	passed, limited := countLimited(t, func(i int) (string, error) {
		return clients[i%2].Call(ctx, "sayHello", payload(0, i))
	})
	var counted float64
	for _, c := range runs[:2] {
		counted += metricValue(get(t, c.admin, "/metrics"), "metamesh_rate_limited_total")
	}
	t.Logf("30 sayHello through two `metamesh run`: %d passed, %d rate limited (counted %v)", passed, limited, counted)
	if passed != 10 || limited != 20 || counted != 20 {
		t.Fatalf("passed %d, limited %d, metamesh_rate_limited_total %v; want 10, 20, 20", passed, limited, counted)
	}

	broken := runs[0]
	broken.Service = "outbound|8081||rate-limit-server.nowhere.svc.cluster.local"
	broken.write(t)
	const reason = "spec.globalRateLimit.rateLimitService: no ServiceEntry defines rate-limit-server.nowhere.svc.cluster.local"
	waitFor(t, 10*time.Second, "the refused edit to be logged", func() bool { return strings.Contains(broken.stderr.String(), reason) })
	if dump := get(t, broken.admin, "/config_dump"); !strings.Contains(dump, service) || strings.Contains(dump, "nowhere") {
		t.Fatalf("after the refused edit the limit in force is not the last good one:\n%s", dump)
	}

	rls.Kill()
	if reply, err := clients[1].Call(ctx, "sayHello", "open"); err != nil || reply != "v1|open" {
		t.Fatalf("service down, fail-open: %q, %v", reply, err)
	}
	if n := metricValue(get(t, runs[1].admin, "/metrics"), "metamesh_rate_limit_service_errors_total"); n != 1 {
		t.Errorf("metamesh_rate_limit_service_errors_total = %v, want 1", n)
	}
	if reply, err := clients[2].Call(ctx, "sayHello", "closed"); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("service down, denyOnFail: %q, %v; want the rate-limited reply", reply, err)
	}
}
