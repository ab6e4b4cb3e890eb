package xds

import (
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// Views that differ only in a gateway's view are not the same (the
// change is pushed), and the gateway views count among the distinct ones.
func TestGatewayViewsPublished(t *testing.T) {
	def, gw := edsSet("d"), edsSet("g")
	p, err := newPublished(&xdsapi.Views{Default: def, Gateways: map[string]*xdsapi.Resources{xdsapi.AnyGateway: def, "ns/gw": gw}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.distinct()); n != 2 {
		t.Errorf("%d distinct views, want 2", n)
	}
	if p.byGW[xdsapi.AnyGateway] != p.def {
		t.Error("a gateway view equal to Default is not Default's")
	}
	for _, c := range []struct {
		node, gw string
		want     *view
	}{
		{"pod.ns", "", p.def}, {"pod.ns", "ns/gw", p.byGW["ns/gw"]}, {"pod.ns", "ns/other", p.def},
	} {
		if p.forProxy(c.node, c.gw) != c.want {
			t.Errorf("%s of gateway %q: wrong view", c.node, c.gw)
		}
	}
	q, err := newPublished(&xdsapi.Views{Default: def, Gateways: map[string]*xdsapi.Resources{xdsapi.AnyGateway: def, "ns/gw": edsSet("g2")}}, p)
	if err != nil {
		t.Fatal(err)
	}
	if p.same(q) {
		t.Error("views whose gateway views differ are the same")
	}
}
