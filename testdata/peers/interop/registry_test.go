package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// registryPolicy is the whole config folder of the registry tests: no
// ServiceEntry, so the service and its endpoints come from the registry.
// The subsets select the `lane` URL parameter the providers register with
// (Dubbo's own `version` is part of the service key: a consumer that does
// not name it would not reach a provider exported with it). SayHello is
// idempotent, so the routes retry a call that was in flight on a provider
// when it was killed (reset), not only connect failures.
var registryPolicy = fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greetings}
spec:
  host: %[1]s
  subsets: [{name: v1, labels: {lane: v1}}, {name: v2, labels: {lane: v2}}]
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: greetings}
spec:
  hosts: [%[1]s]
  routes:
  - name: batchjob-isolation
    match: {attributes: {batchjob: {exact: "true"}}}
    route: [{destination: {host: %[1]s, subset: v2}}]
    retries: {attempts: 2, retryOn: [connect-failure, reset]}
  - name: canary
    retries: {attempts: 2, retryOn: [connect-failure, reset]}
    route:
    - {destination: {host: %[1]s, subset: v1}, weight: 80}
    - {destination: {host: %[1]s, subset: v2}, weight: 20}
`, iface)

func TestRegistryZooKeeper(t *testing.T) {
	// A killed provider's session expires within maxSessionTimeout (4 s).
	testRegistry(t, harness.StartZooKeeper(t), 30*time.Second)
}

func TestRegistryEtcd(t *testing.T) {
	// dubbo-go's etcd client holds its keys with a 30 s lease.
	testRegistry(t, harness.StartEtcd(t), 60*time.Second)
}

// testRegistry drives `metamesh run --registry` against a real registry
// and real dubbo-go providers registering themselves: the 80/20 split
// and the batchjob route hold; a provider that joins is used; a provider
// killed stops being routed to (within gone) and no call fails; with the
// registry stopped traffic keeps flowing on the last endpoints; once it
// is back, a new provider is used again.
func testRegistry(t *testing.T, reg *harness.RegistryServer, gone time.Duration) {
	bin := harness.BuildMetamesh(t)
	regURL := reg.Kind + "://" + reg.Addr
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greetings.yaml"), []byte(registryPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, admin := harness.FreeAddr(t), harness.FreeAddr(t)
	provider := func(version, lane string) *harness.Greeter {
		return harness.StartGreeterWith(t, harness.GreeterOptions{Version: version, Registry: regURL, Params: []string{"lane=" + lane}})
	}
	providers := func() float64 { return metricValue(get(t, admin, "/metrics"), "metamesh_registry_providers") }
	inConfig := func(g *harness.Greeter) bool {
		return strings.Contains(get(t, admin, "/config_dump"), `"portValue": `+portOf(g.Addr)+"\n")
	}
	// Providers of one interface registering at once race on the parent
	// node: one at a time, each an endpoint before the next starts.
	v1a := provider("v1", "v1")
	runLog := &harness.SyncBuffer{}
	runURL := regURL + "?port=" + portOf(listen)
	startRun(t, bin, dir, admin, listen, runLog, "--registry", runURL)
	var live []*harness.Greeter // the providers that are not killed
	for _, lane := range []string{"v1", "v2"} {
		g := provider(lane, lane)
		live = append(live, g)
		waitFor(t, 20*time.Second, "provider "+g.Addr+" in /config_dump", func() bool { return inConfig(g) })
	}
	if n := providers(); n != 3 {
		t.Fatalf("metamesh_registry_providers %v, want 3", n)
	}
	if !strings.Contains(get(t, admin, "/config_dump"), `"metamesh.io/registry"`) {
		t.Fatalf("/config_dump names no registry on the endpoints")
	}

	cl := newClient(t, listen, dubboclient.Options{})
	var calls, failed atomic.Int64
	call := func(ctx context.Context, name string) string {
		got, err := cl.SayHello(ctx, name)
		if calls.Add(1); err != nil || !strings.HasSuffix(got, "|"+name) {
			if failed.Add(1) <= 5 {
				t.Errorf("call %s: %q, %v", name, got, err)
			}
			return ""
		}
		return versionOf(got)
	}
	share := func(n int) float64 {
		var v1, total atomic.Int64
		parallel(t, 8, n/8, func(g, i int) {
			if v := call(context.Background(), payload(g, i)); v != "" {
				total.Add(1)
				if strings.HasPrefix(v, "v1") {
					v1.Add(1)
				}
			}
		})
		return 100 * float64(v1.Load()) / float64(max(total.Load(), 1))
	}
	if s := share(1600); s < 75 || s > 85 {
		t.Fatalf("v1 share %.1f%% under 80/20 with the registry's providers, want 80 ± 5", s)
	}
	batch := dubboclient.WithAttachments(context.Background(), map[string]string{"batchjob": "true"})
	for i := range 50 {
		if v := call(batch, fmt.Sprintf("batch-%d", i)); v != "v2" {
			t.Fatalf("batchjob call %d answered by %q, want v2", i, v)
		}
	}

	// Background callers count failures through the kill and the outage.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				call(context.Background(), payload(g, i))
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	stopCallers := func() { close(stop); wg.Wait() }
	defer func() {
		select {
		case <-stop:
		default:
			stopCallers()
		}
	}()

	// seen polls until a provider answers; its probes are not counted
	// (after a registry restart, providers whose sessions expired are
	// gone from the registry until they register again).
	seen := func(version string, d time.Duration) {
		t.Helper()
		waitFor(t, d, "a reply from the new provider "+version, func() bool {
			for range 20 {
				if got, err := cl.SayHello(context.Background(), "probe"); err == nil && versionOf(got) == version {
					return true
				}
			}
			return false
		})
	}
	live = append(live, provider("v2-joined", "v2"))
	seen("v2-joined", 20*time.Second)

	v1a.Kill()
	waitFor(t, gone, "the killed provider's endpoint to go", func() bool { return !inConfig(v1a) })

	reg.Stop()
	waitFor(t, 30*time.Second, "metamesh_registry_up 0", func() bool {
		return metricValue(get(t, admin, "/metrics"), "metamesh_registry_up") == 0
	})
	// The ServiceEntry made for the interface is flagged, by name, with
	// the registry it keeps the last endpoints of.
	flagged := "endpoints are the last known from " + runURL + " since "
	waitFor(t, 10*time.Second, "the made ServiceEntry flagged in the log", func() bool {
		l := runLog.String()
		return strings.Contains(l, "registry unreachable: endpoints are the last known") &&
			strings.Contains(l, "ServiceEntry/default/registry-") && strings.Contains(l, flagged)
	})
	before := calls.Load()
	if s := share(800); s < 75 || s > 85 {
		t.Fatalf("v1 share %.1f%% with the registry down, want 80 ± 5 on the last known endpoints", s)
	}
	if calls.Load()-before < 800 {
		t.Fatalf("only %d calls made with the registry down", calls.Load()-before)
	}

	stopCallers()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d calls failed through the kill and the outage", f, calls.Load())
	}
	t.Logf("%d calls through the kill and the outage, none failed", calls.Load())

	reg.Start(t)
	waitFor(t, 60*time.Second, "metamesh_registry_up 1", func() bool {
		return metricValue(get(t, admin, "/metrics"), "metamesh_registry_up") == 1
	})
	waitFor(t, 10*time.Second, "the flag cleared in the log", func() bool {
		return strings.Contains(runLog.String(), "registry back: endpoints current again")
	})
	live = append(live, provider("v1-after", "v1"))
	seen("v1-after", 30*time.Second)
	// The providers that lived through the outage are registered again.
	waitFor(t, 60*time.Second, "every live provider in /config_dump", func() bool {
		for _, g := range live {
			if !inConfig(g) {
				return false
			}
		}
		return true
	})
	if s := share(800); s < 75 || s > 85 {
		t.Fatalf("v1 share %.1f%% after the registry came back, want 80 ± 5", s)
	}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d calls failed once every provider was registered again", f)
	}
}
