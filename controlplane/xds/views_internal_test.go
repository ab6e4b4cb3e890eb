package xds

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// edsSet is one EDS cluster named name and its endpoints.
func edsSet(name string) *xdsapi.Resources {
	return &xdsapi.Resources{
		Clusters:  []*clusterv3.Cluster{{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}},
		Endpoints: []*endpointv3.ClusterLoadAssignment{{ClusterName: name}},
	}
}

// Identical views share one view and one encoding, whether handed as the
// same value or as equal copies; views that differ share the tables of
// the types they have in common, and a publish reuses the tables of the
// one before.
func TestIdenticalViewsShareOneEncoding(t *testing.T) {
	def, x := edsSet("d"), edsSet("x")
	p, err := newPublished(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{
		"same-value-1": x, "same-value-2": x, "equal-copy": edsSet("x"), "as-default": edsSet("d"),
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.distinct()); n != 2 {
		t.Errorf("%d distinct views, want 2", n)
	}
	if _, ok := p.byNS["as-default"]; ok {
		t.Error("a namespace whose view equals Default's has a view of its own")
	}
	xv := p.byNS["equal-copy"]
	if xv == nil || xv != p.byNS["same-value-1"] || xv != p.byNS["same-value-2"] {
		t.Fatal("equal views are not one")
	}
	// Clusters and endpoints differ; the (empty) listeners and routes are
	// one table each.
	for i, tb := range xv.tables {
		if shared := tb == p.def.tables[i]; shared != (i >= 2) {
			t.Errorf("%s: table shared %v", typeOrder[i], shared)
		}
	}
	for node, want := range map[string]*view{"pod.equal-copy": xv, "pod": p.def, "pod.nowhere": p.def, "a.b.same-value-2": xv} {
		if p.forNode(node) != want {
			t.Errorf("node %s got the wrong view", node)
		}
	}

	next, err := newPublished(&xdsapi.Views{Default: edsSet("x")}, p)
	if err != nil {
		t.Fatal(err)
	}
	if next.def.tables != xv.tables {
		t.Error("the next publish did not reuse the tables it had")
	}
	if !p.same(p) || p.same(next) {
		t.Error("same is wrong")
	}
	// The same resources handed again are the same view, not built again.
	again, err := newPublished(&xdsapi.Views{Default: def, Namespaces: map[string]*xdsapi.Resources{"ns": x}}, p)
	if err != nil {
		t.Fatal(err)
	}
	if again.def != p.def || again.byNS["ns"] != xv {
		t.Error("views handed again as the same resources were built again")
	}
}

// A bad view refuses the whole update, naming its namespace.
func TestBadViewRefusesTheUpdate(t *testing.T) {
	bad := &xdsapi.Resources{Clusters: []*clusterv3.Cluster{{Name: "orphan", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}}}}
	_, err := newPublished(&xdsapi.Views{Default: edsSet("d"), Namespaces: map[string]*xdsapi.Resources{"broken": bad}}, nil)
	if err == nil || !strings.Contains(err.Error(), "namespace broken") {
		t.Fatalf("err = %v, want one naming namespace broken", err)
	}
}
