package xds_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// A node that connects after a push gets the snapshot in force on its
// first request, applies it as one complete set and ACKs every type.
func TestLateNodeGetsCurrentSnapshot(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(3, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	a := &applier{}
	startClient(t, addr, "late", a, nil)
	waitFor(t, 5*time.Second, "node late to ACK every type", func() bool { return ackedAll(srv, "late") })
	if n := a.count(); n != 1 {
		t.Fatalf("%d sets applied, want the first one complete and alone", n)
	}
	got := a.last()
	if len(got.Listeners) != 1 || len(got.Routes) != 1 || len(got.Clusters) != 15 || len(got.Endpoints) != 15 {
		t.Fatalf("applied %d listeners, %d routes, %d clusters, %d endpoints; want 1, 1, 15, 15",
			len(got.Listeners), len(got.Routes), len(got.Clusters), len(got.Endpoints))
	}
	p := proxy(srv, "late")
	if p.Cluster != "test" || p.Streams != 1 || p.ConnectedSince.IsZero() || p.LastNack != nil {
		t.Fatalf("status %+v", p)
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_connected_proxies", nil); v != 1 {
		t.Fatalf("connected_proxies = %v, want 1", v)
	}
}

// An update after a quiet period is published at once (the leading
// edge), even with a debounce of an hour.
func TestLoneUpdateIsPublishedAtOnce(t *testing.T) {
	srv, _ := startServer(t, xds.Options{Debounce: time.Hour, MaxDelay: time.Hour}, nil)
	srv.Update(resourcesFor(1, "v1"))
	waitFor(t, 5*time.Second, "the lone update's push", srv.Ready)
}

// A burst of updates after a quiet period is at most two pushes: the
// latest when the burst began at once (the leading edge), then the rest
// as one, of the last; a MetaRouter change changes the route version
// only.
func TestBurstIsAtMostTwoPushes(t *testing.T) {
	debounce := 200 * time.Millisecond
	srv, addr := startServer(t, xds.Options{Debounce: debounce, MaxDelay: 10 * time.Second}, nil)
	srv.Update(resourcesFor(2, "v1"))
	a := &applier{}
	startClient(t, addr, "n1", a, nil)
	waitFor(t, 5*time.Second, "the first sync", func() bool { return ackedAll(srv, "n1") })
	before := srv.Versions()
	time.Sleep(debounce) // a quiet period: the burst's first update is a leading edge

	for i := 1; i <= 20; i++ {
		srv.Update(resourcesFor(2, []string{"v1", "v2", "v3"}[i%3]))
	}
	waitFor(t, 5*time.Second, "the burst's last update to be ACKed", func() bool {
		return ackedAll(srv, "n1") && strings.Contains(routeDump(a.last()), "|v3|")
	})
	// A push is counted once sent, so the client may apply it first.
	var pushes float64
	waitFor(t, 5*time.Second, "every applied set's push to be counted", func() bool {
		pushes = metric(t, srv.Registry(), "metamesh_controlplane_xds_pushes_total", nil)
		return int(pushes) >= a.count()
	})
	if pushes < 2 || pushes > 3 {
		t.Fatalf("%v pushes, want 2 or 3 (the first set, then the burst in at most two)", pushes)
	}
	if n := a.count(); n != int(pushes) {
		t.Fatalf("the client applied %d sets, want one per push (%v)", n, pushes)
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_config_updates_total", nil); v != 21 {
		t.Fatalf("%v updates counted, want 21", v)
	}
	after := srv.Versions()
	for _, typ := range []string{"cluster", "endpoint", "listener"} {
		if after[typ] != before[typ] {
			t.Errorf("%s version changed %s → %s on a route-only change", typ, before[typ], after[typ])
		}
	}
	// The same set again is not pushed.
	srv.Update(resourcesFor(2, "v3"))
	time.Sleep(2 * debounce)
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_pushes_total", nil); v != pushes {
		t.Fatalf("an unchanged set was pushed (%v pushes, then %v)", pushes, v)
	}
}

// routeDump is the cluster names the route configurations send to.
func routeDump(res *xdsapi.Resources) string {
	var b strings.Builder
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
					b.WriteString(wc.GetName() + " ")
				}
			}
		}
	}
	return b.String()
}

// A NACK is logged, counted and kept in the node's status; the refused
// version is not sent again, the proxy keeps its version, and the next
// change is pushed and ACKed.
func TestNackReportedAndNotResent(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(2, "v1"))
	a := &applier{refuse: func(res *xdsapi.Resources) error {
		if strings.Contains(routeDump(res), "|v3|") {
			return errors.New("route_configuration dubbo-20880: subset v3 is not welcome here")
		}
		return nil
	}}
	startClient(t, addr, "picky", a, nil)
	waitFor(t, 5*time.Second, "the first sync", func() bool { return ackedAll(srv, "picky") })
	good := srv.Versions()

	srv.Update(resourcesFor(2, "v3"))
	waitFor(t, 5*time.Second, "the NACK", func() bool {
		p := proxy(srv, "picky")
		return p != nil && p.LastNack != nil
	})
	p := proxy(srv, "picky")
	bad := srv.Versions()
	if p.LastNack.Type != "route" || p.LastNack.Version != bad["route"] || !strings.Contains(p.LastNack.Error, "subset v3 is not welcome") {
		t.Fatalf("last NACK %+v; want type route, version %s and the proxy's error", p.LastNack, bad["route"])
	}
	if p.Acked["route"] != good["route"] {
		t.Fatalf("route ACKed at %s, want the last good %s", p.Acked["route"], good["route"])
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_nacks_total", map[string]string{"type": "route"}); v != 1 {
		t.Fatalf("nacks_total{type=route} = %v, want 1", v)
	}
	sent := metric(t, srv.Registry(), "metamesh_controlplane_xds_responses_total", map[string]string{"type": "route"})
	time.Sleep(300 * time.Millisecond)
	if again := metric(t, srv.Registry(), "metamesh_controlplane_xds_responses_total", map[string]string{"type": "route"}); again != sent {
		t.Fatalf("the refused routes were sent again (%v → %v responses)", sent, again)
	}

	srv.Update(resourcesFor(2, "v2"))
	waitFor(t, 5*time.Second, "the next change to be ACKed", func() bool { return ackedAll(srv, "picky") })
	if !strings.Contains(routeDump(a.last()), "|v2|") {
		t.Fatal("the change after the NACK is not in force")
	}
}

// An inconsistent set (an EDS cluster without endpoints) is refused, logged
// and counted, and the snapshot in force stays.
func TestInconsistentSnapshotNotPublished(t *testing.T) {
	srv, _ := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(1, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)
	before := srv.Versions()

	res := resourcesFor(1, "v2")
	res.Clusters = append(res.Clusters, &clusterv3.Cluster{
		Name:                 "orphan",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
	})
	srv.Update(res)
	waitFor(t, 5*time.Second, "the refusal", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_snapshot_errors_total", nil) == 1
	})
	if after := srv.Versions(); after["route"] != before["route"] || after["cluster"] != before["cluster"] {
		t.Fatalf("versions %v after an inconsistent update, want %v", after, before)
	}

	// A route configuration no listener names is inconsistent too.
	res = resourcesFor(1, "v2")
	res.Routes = append(res.Routes, &routev3.RouteConfiguration{Name: "unreferenced"})
	srv.Update(res)
	waitFor(t, 5*time.Second, "the second refusal", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_snapshot_errors_total", nil) == 2
	})
	if after := srv.Versions(); after["route"] != before["route"] {
		t.Fatalf("route version %s after an inconsistent update, want %s", after["route"], before["route"])
	}
}

// TestAppliedSetsNeverRouteToUnknownClusters adds a service at a time
// (new clusters, endpoints and routes to them) and checks every set the
// proxy client applied: ADS sends clusters before the routes that use
// them, so no set may route to a cluster the proxy doesn't have.
func TestAppliedSetsNeverRouteToUnknownClusters(t *testing.T) {
	a := &applier{}
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(1, "v1"))
	startClient(t, addr, "p", a, nil)
	waitFor(t, 5*time.Second, "the first sync", func() bool { return ackedAll(srv, "p") })
	for n := 2; n <= 20; n++ {
		before := srv.Versions()["route"]
		srv.Update(resourcesFor(n, "v1"))
		waitFor(t, 5*time.Second, fmt.Sprintf("%d services acked", n), func() bool {
			return srv.Versions()["route"] != before && ackedAll(srv, "p")
		})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, res := range a.sets {
		have := map[string]bool{}
		for _, c := range res.Clusters {
			have[c.GetName()] = true
		}
		for _, rc := range res.Routes {
			for _, vh := range rc.GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					names := []string{r.GetRoute().GetCluster()}
					for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
						names = append(names, w.GetName())
					}
					for _, n := range names {
						if n != "" && !have[n] {
							t.Fatalf("applied set %d of %d routes %s to cluster %s, which it does not have", i, len(a.sets), vh.GetName(), n)
						}
					}
				}
			}
		}
	}
	t.Logf("%d sets applied, every route's clusters present", len(a.sets))
}
