package fault

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestControlPlaneKilled runs `metamesh controlplane` and `metamesh proxy`
// as processes with a dubbo-go client calling through the proxy the whole
// time, and SIGKILLs the control plane: under load, then right after
// config edits (before, during or after their push), then across restarts
// whose fresh process starts its versions again. What a user expects:
// no call fails while the control plane is down (the proxy keeps its last
// good config, which /config_dump still shows); a restarted control plane
// brings the proxy to the config on disk, every type of it (no half-applied
// state), and traffic follows it; no restart makes the proxy go back to an
// older config.
func TestControlPlaneKilled(t *testing.T) {
	t.Parallel()
	bin := harness.BuildMetamesh(t)
	v1, v2 := harness.StartGreeter(t, "v1"), harness.StartGreeter(t, "v2")
	dir := t.TempDir()
	listen, xds, cpAdmin, proxyAdmin := harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)
	base := meshConfig{Iface: iface, Port: port(listen), V1: port(v1.Addr), V2: port(v2.Addr)}
	// Two configs with disjoint cluster names: A routes to v1, B to v2.
	a, b := base, base
	a.S1, a.S2, a.To, a.Want = "a1", "a2", "a1", "v1"
	b.S1, b.S2, b.To, b.Want = "b1", "b2", "b2", "v2"
	a.write(t, dir)

	var cp *harness.Process
	startCP := func() {
		t.Helper()
		cp = harness.StartProcess(t, "metamesh controlplane", bin, "controlplane", "--config", dir, "--xds", xds,
			"--admin", cpAdmin, "--listen-address", "127.0.0.1", "--log-format", "json", "--insecure")
		waitFor(t, 20*time.Second, "the control plane's /ready", func() bool { return get(cpAdmin, "/ready") == "ready\n" })
	}
	startCP()
	harness.StartProcess(t, "metamesh proxy", bin, "proxy", "--xds", xds, "--node", "proxy-1", "--admin", proxyAdmin,
		"--log-format", "json", "--insecure")
	waitFor(t, 20*time.Second, "the proxy's listener", func() bool { return dialable(listen) })
	cl, err := dubboclient.NewWithOptions(listen, iface, dubboclient.Options{Timeout: 5 * time.Second, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })

	// converged waits until the proxy has every type of the control
	// plane's config and traffic goes where cfg says.
	versionOf := map[string]string{} // by meshConfig.To: the full version each config had
	converged := func(cfg meshConfig, what string) string {
		t.Helper()
		var want string
		waitFor(t, 30*time.Second, what+": the proxy to have the control plane's config", func() bool {
			want = controlPlane(cpAdmin).version()
			return want != "" && proxyVersion(proxyAdmin) == want
		})
		for i := range 20 {
			if got := replyFrom(cl, fmt.Sprintf("probe-%d", i)); got != cfg.Want {
				t.Fatalf("%s: call %d answered by %q, want %s", what, i, got, cfg.Want)
			}
		}
		if had, ok := versionOf[cfg.To]; ok && had != want {
			t.Errorf("%s: the config routing to %s has version %q, had %q: versions are not content hashes any more", what, cfg.To, want, had)
		}
		versionOf[cfg.To] = want
		return want
	}
	versionA := converged(a, "first sync")
	versions := watchVersions(proxyAdmin)
	defer versions.close()
	ld := startLoad(cl, 8)
	defer ld.finish()
	ld.more(t, 200, "before any kill")

	t.Run("killed under load", func(t *testing.T) {
		cp.Kill()
		ld.more(t, 500, "with the control plane dead")
		if got := proxyVersion(proxyAdmin); got != versionA {
			t.Fatalf("with the control plane dead, the proxy's config is %q, want the last good %q", got, versionA)
		}
		startCP()
		if got := converged(a, "restarted on the same config"); got != versionA {
			t.Fatalf("the restarted control plane serves %q for the same files, was %q", got, versionA)
		}
	})

	// Each edit flips A and B (every cluster the route in force uses is
	// removed), and the control plane dies at a different point: right
	// after the write, once it has loaded the edit (its push waits out the
	// debounce), as soon as the proxy shows any part of the push, or well
	// after it.
	cfgs := []meshConfig{b, a}
	loaded := func(before string) func() bool {
		n := strings.Count(cp.Output(), `"config applied"`)
		return func() bool { return strings.Count(cp.Output(), `"config applied"`) > n }
	}
	changed := func(before string) func() bool {
		return func() bool { return proxyVersion(proxyAdmin) != before }
	}
	points := []struct {
		name string
		when func(before string) func() bool
	}{
		{"right after an edit", nil},
		{"once it loaded an edit", loaded},
		{"as the proxy gets the push", changed},
		{"300ms after an edit", func(string) func() bool {
			at := time.Now().Add(300 * time.Millisecond)
			return func() bool { return time.Now().After(at) }
		}},
	}
	for i, p := range append(points, points...) {
		cfg := cfgs[i%2]
		t.Run("killed "+p.name, func(t *testing.T) {
			before := proxyVersion(proxyAdmin)
			var ready func() bool
			if p.when != nil {
				ready = p.when(before)
			}
			cfg.write(t, dir)
			if ready != nil {
				waitFor(t, 10*time.Second, p.name, ready)
			}
			cp.Kill()
			ld.more(t, 300, "with the control plane dead after the edit")
			during := proxyVersion(proxyAdmin)
			startCP()
			after := converged(cfg, "restarted after the edit")
			state := "the old config"
			switch during {
			case before:
			case after:
				state = "the new config"
			default:
				state = "part of the new config: " + during
			}
			t.Logf("while the control plane was dead the proxy had %s", state)
		})
	}
	ld.check(t, "across the kills after edits")

	t.Run("restarts never go back", func(t *testing.T) {
		// The proxy has cfgs[last]; the other one is older. Each restart is
		// a fresh process, whose versions start again; the proxy must never
		// show the older config again.
		current := proxyVersion(proxyAdmin)
		older := versionOf[a.To]
		if current == older {
			older = versionOf[b.To]
		}
		from := versions.len()
		for range 3 {
			cp.Kill()
			ld.more(t, 100, "with the control plane dead")
			startCP()
			waitFor(t, 20*time.Second, "the proxy to reconnect", func() bool {
				s := controlPlane(cpAdmin)
				return len(s.Proxies) == 1 && s.Proxies[0].Node == "proxy-1"
			})
			ld.more(t, 100, "after the restart")
		}
		seen := versions.since(from)
		if slices.Contains(seen, older) || proxyVersion(proxyAdmin) != current {
			t.Fatalf("across restarts the proxy showed %s; it had %q and must never go back to %q", describe(seen), current, older)
		}
	})
	ld.finish()
	t.Logf("load: %v; versions the proxy went through: %d", ld, versions.len())
	ld.check(t, "the whole test")
	if ld.v1.Load() == 0 || ld.v2.Load() == 0 {
		t.Errorf("load: %v; traffic did not follow the edits to both versions", ld)
	}
}
