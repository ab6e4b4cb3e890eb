package xds_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// startGatewayClient is startClient for a proxy of gateway gw.
func startGatewayClient(t *testing.T, addr, node, gw string, a *applier) {
	t.Helper()
	c, err := xdsclient.New(xdsclient.Config{Address: addr, NodeID: node, Gateway: gw, Apply: a.Apply, Log: zaptest.NewLogger(t),
		Backoff: xdsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A proxy that serves a gateway (node metadata metamesh.io/gateway, sent
// by xdsclient's Config.Gateway) gets its gateway's view, else that of
// the gateways without one (AnyGateway), whatever its namespace; sidecars
// keep their namespace's; /debug/proxies shows the gateway. A change to
// one gateway's view reaches its proxies only; with no gateway views,
// gateway proxies get their namespace's.
func TestProxiesGetTheirGatewayView(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	def, teamA, anyGW, ingress := resourcesFor(1, "v1"), resourcesFor(2, "v1"), resourcesFor(3, "v1"), resourcesFor(4, "v1")
	srv.UpdateViews(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{"team-a": teamA},
		Gateways: map[string]*xdsapi.Resources{xdsapi.AnyGateway: anyGW, "edge/ingress": ingress}})
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	type node struct {
		gateway  string
		clusters int
	}
	nodes := map[string]node{
		"p1.team-a":   {"", 10},
		"nodot":       {"", 5},
		"gw1.edge":    {"edge/ingress", 20},
		"gw2.team-a":  {"team-a/other", 15},
		"gw3.elsewhr": {"edge/ingress", 20},
	}
	appliers := map[string]*applier{}
	for name, n := range nodes {
		appliers[name] = &applier{}
		if n.gateway == "" {
			startClient(t, addr, name, appliers[name], nil)
		} else {
			startGatewayClient(t, addr, name, n.gateway, appliers[name])
		}
	}
	for name, n := range nodes {
		waitFor(t, 5*time.Second, name+"'s first set", func() bool { return appliers[name].count() == 1 })
		if got := len(appliers[name].last().Clusters); got != n.clusters {
			t.Errorf("%s (gateway %q) applied %d clusters, want %d", name, n.gateway, got, n.clusters)
		}
		waitFor(t, 5*time.Second, name+"'s ACKs", func() bool {
			p := proxy(srv, name)
			return p != nil && maps.Equal(p.Acked, p.View) && maps.Equal(p.View, srv.VersionsFor(name))
		})
		if got := proxy(srv, name).Gateway; got != n.gateway {
			t.Errorf("/debug/proxies: %s serves gateway %q, want %q", name, got, n.gateway)
		}
	}

	// Only edge/ingress's view changes.
	srv.UpdateViews(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{"team-a": teamA},
		Gateways: map[string]*xdsapi.Resources{xdsapi.AnyGateway: anyGW, "edge/ingress": resourcesFor(4, "v2")}})
	for _, name := range []string{"gw1.edge", "gw3.elsewhr"} {
		waitFor(t, 5*time.Second, name+"'s change", func() bool { return appliers[name].count() == 2 })
		if got := routeDump(appliers[name].last()); !strings.Contains(got, "|v2|") {
			t.Errorf("%s's routes in force %q, want its gateway's new view's (subset v2)", name, got)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, name := range []string{"p1.team-a", "nodot", "gw2.team-a"} {
		if got := appliers[name].count(); got != 1 {
			t.Errorf("%s applied %d sets, want 1: its view did not change", name, got)
		}
	}

	// Without gateway views, a gateway's proxy gets its namespace's.
	srv.UpdateViews(&xdsapi.Views{Default: resourcesFor(5, "v1"), Namespaces: map[string]*xdsapi.Resources{"team-a": resourcesFor(6, "v1")}})
	for name, want := range map[string]int{"gw1.edge": 25, "gw2.team-a": 30, "p1.team-a": 30} {
		waitFor(t, 5*time.Second, name+" to get its namespace's view", func() bool {
			last := appliers[name].last()
			return last != nil && len(last.Clusters) == want
		})
	}
}
