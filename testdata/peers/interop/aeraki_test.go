package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// Aeraki's own traffic-split MetaRouter, applied unchanged, routes real
// Dubbo traffic as it says: calls to DemoService.sayHello carrying foo=bar
// split 20/80 between v1 and v2; other calls match no route.
func TestAerakiTrafficSplitUnchanged(t *testing.T) {
	const demo = "org.apache.dubbo.samples.basic.api.DemoService"
	bin := harness.BuildMetamesh(t)
	v1 := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v1", Interface: demo})
	v2 := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v2", Interface: demo})
	dir, listen, admin := t.TempDir(), harness.FreeAddr(t), harness.FreeAddr(t)

	sample, err := os.ReadFile(filepath.Join("..", "..", "..", "crds", "samples", "aeraki-traffic-split.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	services := fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: demoservice, namespace: meta-dubbo}
spec:
  hosts: [org.apache.dubbo.samples.basic.api.demoservice]
  ports: [{number: %s, name: tcp-metaprotocol-dubbo, protocol: dubbo}]
  endpoints:
  - {address: 127.0.0.1, ports: {tcp-metaprotocol-dubbo: %s}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {tcp-metaprotocol-dubbo: %s}, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: demoservice, namespace: meta-dubbo}
spec:
  host: org.apache.dubbo.samples.basic.api.demoservice
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`, portOf(listen), portOf(v1.Addr), portOf(v2.Addr))
	for name, body := range map[string][]byte{"services.yaml": []byte(services), "aeraki-traffic-split.yaml": sample} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	startRun(t, bin, dir, admin, listen, &harness.SyncBuffer{})

	c, err := dubboclient.New(listen, demo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := dubboclient.WithAttachments(context.Background(), map[string]string{"foo": "bar"})
	var n1, n2 atomic.Int64
	parallel(t, 16, 1000/16, func(g, i int) {
		got, err := c.Call(ctx, "sayHello", payload(g, i))
		if err != nil || !strings.HasSuffix(got, "|"+payload(g, i)) {
			t.Errorf("call %d/%d: %q, %v", g, i, got, err)
			return
		}
		if versionOf(got) == "v1" {
			n1.Add(1)
		} else {
			n2.Add(1)
		}
	})
	share := 100 * float64(n1.Load()) / float64(max(n1.Load()+n2.Load(), 1))
	t.Logf("foo=bar: v1 %d, v2 %d (v1 %.1f%%)", n1.Load(), n2.Load(), share)
	if share < 15 || share > 25 {
		t.Fatalf("v1 share %.1f%%, want 20 ± 5 as the Aeraki example says", share)
	}
	if _, err := c.Call(context.Background(), "sayHello", "no-foo"); err == nil || !strings.Contains(err.Error(), "no route") {
		t.Fatalf("a call without foo=bar: %v; want the proxy's no-route error", err)
	}
}
