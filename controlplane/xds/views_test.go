package xds_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// Each proxy gets the view of its namespace (the part of its node ID
// after the last dot), Default when its namespace has none or its ID no
// dot; a change to one namespace's view reaches that namespace's proxies
// only.
func TestProxiesGetTheirNamespaceView(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	def, a, b := resourcesFor(1, "v1"), resourcesFor(2, "v1"), resourcesFor(3, "v1")
	srv.UpdateViews(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{"team-a": a, "team-b": b}})
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	appliers := map[string]*applier{}
	wantClusters := map[string]int{"p1.team-a": 10, "p2.pod.team-b": 15, "nodot": 5, "p3.elsewhere": 5}
	for node := range wantClusters {
		appliers[node] = &applier{}
		startClient(t, addr, node, appliers[node], nil)
	}
	for node, want := range wantClusters {
		waitFor(t, 5*time.Second, node+"'s first set", func() bool { return appliers[node].count() == 1 })
		if got := len(appliers[node].last().Clusters); got != want {
			t.Errorf("%s applied %d clusters, want %d", node, got, want)
		}
		waitFor(t, 5*time.Second, node+"'s ACKs", func() bool {
			p := proxy(srv, node)
			return p != nil && maps.Equal(p.Acked, p.View) && maps.Equal(p.View, srv.VersionsFor(node))
		})
	}

	// team-a's view changes; team-b's stays the same content (a new copy).
	srv.UpdateViews(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{"team-a": resourcesFor(2, "v2"), "team-b": resourcesFor(3, "v1")}})
	waitFor(t, 5*time.Second, "team-a's change", func() bool { return appliers["p1.team-a"].count() == 2 })
	time.Sleep(200 * time.Millisecond)
	for node, want := range map[string]int{"p2.pod.team-b": 1, "nodot": 1, "p3.elsewhere": 1} {
		if got := appliers[node].count(); got != want {
			t.Errorf("%s applied %d sets, want %d: its view did not change", node, got, want)
		}
	}
	if got := routeDump(appliers["p1.team-a"].last()); !strings.Contains(got, "|v2|") {
		t.Errorf("team-a's routes in force %q, want its new view's (subset v2)", got)
	}

	// Update is one view for all.
	srv.Update(resourcesFor(4, "v1"))
	for node := range wantClusters {
		waitFor(t, 5*time.Second, node+" to get the one view", func() bool {
			last := appliers[node].last()
			return last != nil && len(last.Clusters) == 20
		})
	}
}
