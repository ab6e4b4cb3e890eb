package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// appLevelPolicy routes by the Dubbo service version the consumer names:
// subsets select the `version` label, which application-level providers
// get from their application's metadata (their own parameters, such as
// lane, are not in it).
var appLevelPolicy = fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greetings}
spec:
  host: %[1]s
  subsets: [{name: v1, labels: {version: 1.0.0}}, {name: v2, labels: {version: 2.0.0}}]
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: greetings}
spec:
  hosts: [%[1]s]
  routes:
  - name: v2
    match: {attributes: {version: {exact: "2.0.0"}}}
    route: [{destination: {host: %[1]s, subset: v2}}]
    retries: {attempts: 2, retryOn: [connect-failure, reset]}
  - name: v1
    route: [{destination: {host: %[1]s, subset: v1}}]
    retries: {attempts: 2, retryOn: [connect-failure, reset]}
`, iface)

func TestRegistryZooKeeperApplicationLevel(t *testing.T) {
	testRegistryApplicationLevel(t, harness.StartZooKeeper(t), 30*time.Second)
}

func TestRegistryEtcdApplicationLevel(t *testing.T) {
	// dubbo-go's etcd client holds its keys with a 30 s lease.
	testRegistryApplicationLevel(t, harness.StartEtcd(t), 60*time.Second)
}

// testRegistryApplicationLevel drives `metamesh run --registry` against a
// real registry and real dubbo-go providers that register
// application-level only (dubbo-go's registry type "service"): no
// interface-level node, so metamesh follows the interface's mapping to the
// applications' instances and metadata. Two dubbo-go consumers naming
// versions 1.0.0 and 2.0.0 reach only the providers exporting those
// versions (any other answers "don't have this exporter"); an instance
// killed is dropped from the config and calls go on without it; after the
// registry restarts, a new instance is routed to.
func testRegistryApplicationLevel(t *testing.T, reg *harness.RegistryServer, gone time.Duration) {
	bin := harness.BuildMetamesh(t)
	regURL := reg.Kind + "://" + reg.Addr
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greetings.yaml"), []byte(appLevelPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := harness.FreeAddr(t), harness.FreeAddr(t)
	// label is what the replies start with and names the application
	// (metamesh-greeter-<label>); lane=… is a URL parameter the
	// application-level records do not carry.
	provider := func(label, version string) *harness.Greeter {
		return harness.StartGreeterWith(t, harness.GreeterOptions{Version: label, Registry: regURL, RegistryType: "service",
			ServiceVersion: version, Params: []string{"lane=" + label}})
	}
	inConfig := func(g *harness.Greeter) bool {
		return strings.Contains(get(t, admin, "/config_dump"), `"portValue": `+portOf(g.Addr)+"\n")
	}
	// One at a time: each is an endpoint before the next registers. The
	// two v1 instances are one application: its metadata, published by
	// the first, names the first's port, which the second must not take.
	// run's listener opens once the first is in its config.
	v1a := provider("v1", "1.0.0")
	startRun(t, bin, dir, admin, listen, &harness.SyncBuffer{}, "--registry", regURL+"?port="+portOf(listen))
	v2 := provider("v2", "2.0.0")
	waitFor(t, 20*time.Second, "v2 in /config_dump", func() bool { return inConfig(v2) })
	v1b := provider("v1", "1.0.0")
	waitFor(t, 20*time.Second, "v1 (second instance) in /config_dump", func() bool { return inConfig(v1b) })

	// What dubbo-go registered: the application-level records only.
	keys := reg.Keys(t)
	for k := range keys {
		if strings.Contains(k, "/providers") {
			t.Fatalf("an interface-level record %s: the providers were to register application-level only (registry: %v)", k, harness.SortedKeys(keys))
		}
	}
	if apps := keys["/dubbo/mapping/"+iface]; !strings.Contains(apps, "metamesh-greeter-v1") || !strings.Contains(apps, "metamesh-greeter-v2") {
		t.Fatalf("mapping %q (registry: %v)", apps, harness.SortedKeys(keys))
	}
	if _, ok := keys["/services/metamesh-greeter-v1/"+v1b.Addr]; !ok {
		t.Fatalf("no instance %s of metamesh-greeter-v1 (registry: %v)", v1b.Addr, harness.SortedKeys(keys))
	}
	if n := metricValue(get(t, admin, "/metrics"), "metamesh_registry_providers"); n != 3 {
		t.Fatalf("metamesh_registry_providers %v, want 3", n)
	}
	dump := get(t, admin, "/config_dump")
	for _, want := range []string{`"version": "1.0.0"`, `"version": "2.0.0"`, `"application": "metamesh-greeter-v1"`} {
		if !strings.Contains(dump, want) {
			t.Errorf("/config_dump has no endpoint label %s", want)
		}
	}
	if strings.Contains(dump, `"lane"`) {
		t.Errorf("/config_dump has a lane label; application-level metadata has no such parameter")
	}

	c1 := newClient(t, listen, dubboclient.Options{Version: "1.0.0"})
	c2 := newClient(t, listen, dubboclient.Options{Version: "2.0.0"})
	var failed atomic.Int64
	calls := func(c *dubboclient.Client, want string, n int) {
		t.Helper()
		parallel(t, 4, n/4, func(g, i int) {
			name := payload(g, i)
			got, err := c.SayHello(context.Background(), name)
			if err != nil || got != want+"|"+name {
				if failed.Add(1) <= 5 {
					t.Errorf("consumer of %s: SayHello(%s) = %q, %v; want %s|%s", want, name, got, err, want, name)
				}
			}
		})
	}
	calls(c1, "v1", 200)
	calls(c2, "v2", 200)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of 400 calls failed or reached another version", f)
	}

	// The second v1 instance dies: its instance goes with its session (or
	// lease), and with it its endpoint; the first serves v1 alone.
	v1b.Kill()
	waitFor(t, gone, "the killed instance's endpoint to go", func() bool { return !inConfig(v1b) })
	if !inConfig(v1a) || !inConfig(v2) {
		t.Fatalf("the live instances left the config with the killed one")
	}
	calls(c1, "v1", 200)
	calls(c2, "v2", 100)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d calls failed after the instance left", f)
	}

	// The registry restarts. Once it answers, metamesh watches again (a new
	// ZooKeeper session is listed in full; etcd's watch resumes): an
	// instance registering afterwards is routed to, and the live ones,
	// registered again if their sessions expired, stay.
	reg.Stop()
	waitFor(t, 30*time.Second, "metamesh_registry_up 0", func() bool {
		return metricValue(get(t, admin, "/metrics"), "metamesh_registry_up") == 0
	})
	reg.Start(t)
	waitFor(t, 60*time.Second, "metamesh_registry_up 1", func() bool {
		return metricValue(get(t, admin, "/metrics"), "metamesh_registry_up") == 1
	})
	v2b := provider("v2", "2.0.0")
	waitFor(t, 30*time.Second, "a v2 instance registered after the restart in /config_dump", func() bool { return inConfig(v2b) })
	waitFor(t, 60*time.Second, "the live instances in /config_dump", func() bool { return inConfig(v1a) && inConfig(v2) })
	calls(c1, "v1", 100)
	calls(c2, "v2", 100)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d calls failed after the registry restarted", f)
	}
}
