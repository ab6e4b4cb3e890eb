package xds

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// edsSet is one EDS cluster named name and its endpoints.
func edsSet(name string) *xdsapi.Resources {
	return &xdsapi.Resources{
		Clusters:  []*clusterv3.Cluster{{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}},
		Endpoints: []*endpointv3.ClusterLoadAssignment{{ClusterName: name}},
	}
}

// Identical views share one snapshot and one encoding, whether handed
// as the same value or as equal copies.
func TestIdenticalViewsShareOneEncoding(t *testing.T) {
	def, x := edsSet("d"), edsSet("x")
	p, marshaled, err := newPublished(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{
		"same-value-1": x, "same-value-2": x, "equal-copy": edsSet("x"), "as-default": edsSet("d"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.views(); n != 2 {
		t.Errorf("%d distinct snapshots, want 2", n)
	}
	if _, ok := p.byNS["as-default"]; ok {
		t.Error("a namespace whose view equals Default's has a snapshot of its own")
	}
	if p.byNS["same-value-1"] != p.byNS["equal-copy"] || p.byNS["same-value-1"] != p.byNS["same-value-2"] {
		t.Error("equal views have different snapshots")
	}
	// Clusters and endpoints of two views; listeners and routes (none)
	// are the same empty set in both.
	if len(marshaled) != 6 {
		t.Errorf("%d marshaled sets, want 6 (2 views × clusters, endpoints, and one each of the empty listeners and routes)", len(marshaled))
	}
	for node, want := range map[string]*cachev3.Snapshot{"pod.equal-copy": p.byNS["equal-copy"], "pod": p.def, "pod.nowhere": p.def, "a.b.same-value-2": p.byNS["equal-copy"]} {
		if p.forNode(node) != want {
			t.Errorf("node %s got the wrong view", node)
		}
	}
}

// A bad view refuses the whole update, naming its namespace.
func TestBadViewRefusesTheUpdate(t *testing.T) {
	bad := &xdsapi.Resources{Clusters: []*clusterv3.Cluster{{Name: "orphan", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}}}
	_, _, err := newPublished(&xdsapi.Views{Default: edsSet("d"), Namespaces: map[string]*xdsapi.Resources{"broken": bad}})
	if err == nil || !strings.Contains(err.Error(), "namespace broken") {
		t.Fatalf("err = %v, want one naming namespace broken", err)
	}
}
