package translate

import (
	"strings"
	"testing"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// routeNames are the route names of host's virtual host in res ("-" when
// res has no such host).
func routeNames(t *testing.T, res *xdsapi.Resources, host string) string {
	t.Helper()
	if res == nil {
		return "-"
	}
	for _, rc := range res.Routes {
		for _, vh := range rc.VirtualHosts {
			if vh.Domains[0] == host {
				var names []string
				for _, r := range vh.Routes {
					names = append(names, r.Name)
				}
				return strings.Join(names, ",")
			}
		}
	}
	return "-"
}

func gatewayRouter(ns, name string, sec int, host string, gateways ...string) *v1alpha1.MetaRouter {
	r := router(created(ns, name, sec), host)
	r.Spec.Routes[0].Name = name
	r.Spec.Gateways = gateways
	return r
}

// A MetaRouter without gateways applies to the sidecars, one with
// gateways to the proxies of those gateways only ("mesh" adding the
// sidecars); a gateway no MetaRouter names gets no routes but the
// default ones; a bare gateway name is in the MetaRouter's namespace.
func TestGatewayViews(t *testing.T) {
	in := &Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{
			entry(created("shop", "a", 1), "a.shop", 20880, "dubbo"),
			entry(created("shop", "b", 1), "b.shop", 20880, "dubbo"),
			exported(entry(created("shop", "c", 1), "c.shop", 20880, "dubbo"), "."),
		},
		MetaRouters: []*v1alpha1.MetaRouter{
			gatewayRouter("shop", "a-mesh", 1, "a.shop"),
			gatewayRouter("shop", "a-ingress", 2, "a.shop", "istio-system/ingress"),
			gatewayRouter("shop", "b-both", 3, "b.shop", "mesh", "edge"),
			gatewayRouter("shop", "c-edge", 4, "c.shop", "edge"),
		},
		// a Sidecar scopes its namespace's sidecars, not its gateways
		Sidecars: []*v1alpha1.Sidecar{sidecarIn("shop", "./a.shop")},
	}
	if cs := Conflicts(in, Options{}); len(cs) != 0 {
		t.Fatalf("conflicts %+v", cs)
	}
	out := Translate(in, Options{})
	v := out.Views
	for _, c := range []struct {
		view    string
		res     *xdsapi.Resources
		a, b, c string
	}{
		{"Default", v.Default, "a-mesh", "b-both", "-"},
		{"shop", v.For("shop"), "a-mesh", "-", "-"},
		{"istio-system/ingress", v.ForGateway("istio-system/ingress"), "a-ingress", "default", "-"},
		{"shop/edge", v.ForGateway("shop/edge"), "default", "b-both", "c-edge"},
		{"an unnamed gateway", v.ForGateway("other/gw"), "default", "default", "-"},
		{"the whole mesh", out.Resources, "a-mesh", "b-both", "default"},
	} {
		got := [3]string{routeNames(t, c.res, "a.shop"), routeNames(t, c.res, "b.shop"), routeNames(t, c.res, "c.shop")}
		if want := [3]string{c.a, c.b, c.c}; got != want {
			t.Errorf("view of %s: routes of a, b, c %q, want %q", c.view, got, want)
		}
	}
	if len(v.Gateways) != 3 {
		t.Errorf("gateway views %d, want 3 (*, istio-system/ingress, shop/edge)", len(v.Gateways))
	}
}

// Two MetaRouters of one host conflict when some proxy would get both:
// the same gateway, or both the sidecars; the refusal names the gateways.
func TestGatewayConflicts(t *testing.T) {
	in := &Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{entry(created("shop", "a", 1), "a.shop", 20880, "dubbo")},
		MetaRouters: []*v1alpha1.MetaRouter{
			gatewayRouter("shop", "one", 1, "a.shop", "gw"),
			gatewayRouter("shop", "two", 2, "a.shop", "shop/gw", "mesh"),
			gatewayRouter("shop", "three", 3, "a.shop", "mesh"),
			gatewayRouter("shop", "four", 4, "a.shop", "other/gw"),
			gatewayRouter("shop", "five", 5, "a.shop"),
		},
	}
	cs := Conflicts(in, Options{})
	if len(cs) != 2 || cs[0].Key != "MetaRouter/shop/two" || cs[0].Holder != "MetaRouter/shop/one" ||
		cs[1].Key != "MetaRouter/shop/five" || cs[1].Holder != "MetaRouter/shop/three" {
		t.Fatalf("conflicts %+v, want two refused for one (gateway shop/gw), five for three (the sidecars)", cs)
	}
	if want := "for gateways shop/gw (this one is for the sidecars and gateways shop/gw)"; !strings.HasSuffix(cs[0].Reason, want) {
		t.Errorf("reason %q, want it to end with %q", cs[0].Reason, want)
	}
	if strings.Contains(cs[1].Reason, "for") {
		t.Errorf("two routers of the sidecars: reason %q, want no word of gateways", cs[1].Reason)
	}
	v := Translate(in, Options{}).Views
	for view, want := range map[string]string{"": "three", "shop/gw": "one", "other/gw": "four"} {
		res := v.Default
		if view != "" {
			res = v.ForGateway(view)
		}
		if got := routeNames(t, res, "a.shop"); got != want {
			t.Errorf("view of %q: routes %q, want %q", view, got, want)
		}
	}
}

// A MetaRouter for gateways none of which is in a namespace it is
// exported to is accepted with a note saying it applies nowhere.
func TestGatewaysNotExportedTo(t *testing.T) {
	lost := gatewayRouter("shop", "lost", 1, "a.shop", "edge/ingress")
	lost.Spec.Hosts = append(lost.Spec.Hosts, "b.shop")
	lost.Spec.ExportTo = v1alpha1.ExportTo{"."}
	found := gatewayRouter("shop", "found", 1, "a.shop", "ingress")
	found.Spec.ExportTo = v1alpha1.ExportTo{"."}
	out := Translate(&Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{entry(created("shop", "a", 1), "a.shop", 20880, "dubbo"), entry(created("shop", "b", 1), "b.shop", 20880, "dubbo")},
		MetaRouters:    []*v1alpha1.MetaRouter{lost, found},
	}, Options{})
	want := "accepted; spec.exportTo: none of the gateways edge/ingress is in namespaces shop, so it applies nowhere"
	if got := out.Status["MetaRouter/shop/lost"].Get(v1alpha1.ConditionAccepted); got.Message != want {
		t.Errorf("lost: %q, want %q", got.Message, want)
	}
	if got := out.Status["MetaRouter/shop/found"].Get(v1alpha1.ConditionAccepted); got.Message != "accepted" {
		t.Errorf("found: %q", got.Message)
	}
}
