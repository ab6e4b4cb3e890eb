package translate

import (
	"slices"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

func exported(se *v1alpha1.ServiceEntry, to ...string) *v1alpha1.ServiceEntry {
	se.Spec.ExportTo = to
	return se
}

func sidecarIn(ns string, hosts ...string) *v1alpha1.Sidecar {
	return &v1alpha1.Sidecar{ObjectMeta: created(ns, "default", 0), Spec: v1alpha1.SidecarSpec{Egress: []v1alpha1.SidecarEgress{{Hosts: hosts}}}}
}

func clusterNames(r *xdsapi.Resources) []string {
	var out []string
	for _, c := range r.Clusters {
		out = append(out, c.GetName())
	}
	return out
}

// Without exportTo or Sidecar, every proxy gets the whole mesh: one
// Resources, no namespace views.
func TestViewsUnscoped(t *testing.T) {
	out := Translate(readInput(t, "testdata/demo/input.yaml"), Options{})
	if out.Views.Default != out.Resources || len(out.Views.Namespaces) != 0 {
		t.Errorf("Default %p (Resources %p), %d namespace views", out.Views.Default, out.Resources, len(out.Views.Namespaces))
	}
}

// Namespaces that see the same hosts share one Resources; a namespace an
// exportTo names but that sees what Default does gets no entry.
func TestViewsShared(t *testing.T) {
	in := &Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{
			entry(created("a", "one", 1), "one.a", 20880, "dubbo"),
			exported(entry(created("a", "two", 1), "two.a", 20880, "dubbo"), "x", "y"),
			exported(entry(created("b", "three", 1), "three.b", 20880, "dubbo"), "*"),
		},
		Sidecars: []*v1alpha1.Sidecar{sidecarIn("p", "*/one.a"), sidecarIn("q", "a/*", "b/three.*")},
		// exported to z, where it changes nothing z sees
		MetaRouters: []*v1alpha1.MetaRouter{func() *v1alpha1.MetaRouter {
			r := router(created("a", "r", 1), "missing.host")
			r.Spec.ExportTo = v1alpha1.ExportTo{"z"}
			return r
		}()},
	}
	out := Translate(in, Options{})
	v := out.Views
	if v.Namespaces["x"] == nil || v.Namespaces["x"] != v.Namespaces["y"] {
		t.Errorf("x and y see the same hosts: want one shared view, got %p and %p", v.Namespaces["x"], v.Namespaces["y"])
	}
	if _, ok := v.Namespaces["z"]; ok {
		t.Error("z sees what Default does: want no entry")
	}
	for ns, want := range map[string][]string{
		"":  {"outbound|20880||one.a", "outbound|20880||three.b"},
		"x": {"outbound|20880||one.a", "outbound|20880||three.b", "outbound|20880||two.a"},
		"p": {"outbound|20880||one.a"},
		// a/* is one.a only (two.a is not exported to q); b/three.*
		// is not three.b (no suffix after it)
		"q": {"outbound|20880||one.a"},
	} {
		if got := clusterNames(v.For(ns)); !slices.Equal(got, want) {
			t.Errorf("view of %q: clusters %q, want %q", ns, got, want)
		}
	}
	if got := clusterNames(out.Resources); len(got) != 3 {
		t.Errorf("the whole mesh has every host: %q", got)
	}
}

func TestEgressMatches(t *testing.T) {
	for _, c := range []struct {
		egress   egress
		ns, host string
		want     bool
	}{
		{egress{"*", "*"}, "a", "x.y", true},
		{egress{"a", "*"}, "b", "x.y", false},
		{egress{"a", "x.y"}, "a", "x.y", true},
		{egress{"a", "x.y"}, "a", "x.yz", false},
		{egress{"*", "*.example.com"}, "a", "svc.example.com", true},
		{egress{"*", "*.example.com"}, "a", "example.com", false},
		{egress{"*", "*.example.com"}, "a", "svcexample.com", false},
	} {
		if got := c.egress.matches(c.ns, c.host); got != c.want {
			t.Errorf("%+v matches %s/%s: %v, want %v", c.egress, c.ns, c.host, got, c.want)
		}
	}
}

// Two policies of one host conflict only when some namespace would see
// both; the refusal names the exports.
func TestPoliciesExportedApart(t *testing.T) {
	se := entry(created("a", "svc", 1), "svc.a", 20880, "dubbo")
	pol := func(name string, sec int, to ...string) *v1alpha1.DestinationPolicy {
		p := policy(created("a", name, sec), "svc.a")
		p.Spec.ExportTo = to
		p.Spec.Subsets = []v1alpha1.Subset{{Name: v1alpha1.Name(name)}}
		return p
	}
	in := &Input{ServiceEntries: []*v1alpha1.ServiceEntry{se},
		DestinationPolicies: []*v1alpha1.DestinationPolicy{pol("one", 1, "x"), pol("two", 2, "y", "."), pol("three", 3, "a")}}
	if cs := Conflicts(in, Options{}); len(cs) != 1 || cs[0].Key != "DestinationPolicy/a/three" || cs[0].Holder != "DestinationPolicy/a/two" {
		t.Fatalf("conflicts %+v, want three refused for two (both exported to a)", cs)
	}
	out := Translate(in, Options{})
	for ns, want := range map[string]string{"x": "outbound|20880|one|svc.a", "y": "outbound|20880|two|svc.a", "a": "outbound|20880|two|svc.a"} {
		if got := clusterNames(out.Views.For(ns)); !slices.Contains(got, want) || len(got) != 2 {
			t.Errorf("view of %s: clusters %q, want the default one and %s", ns, got, want)
		}
	}
	if got := clusterNames(out.Views.Default); len(got) != 1 {
		t.Errorf("Default sees no policy: clusters %q", got)
	}
}

// A route to another host takes that host's load-balancing hash key from
// the DestinationPolicy in force in the view: one exported to shop only
// hashes in shop's view and not in the Default one.
func TestRouteToAnotherHostFollowsItsPolicyByView(t *testing.T) {
	a, b := entry(created("a", "a", 1), "a.a", 20880, "dubbo"), entry(created("b", "b", 1), "b.b", 20880, "dubbo")
	r := router(created("a", "to-b", 1), "a.a")
	r.Spec.Routes[0].Route[0].Destination.Host = "b.b"
	p := policy(created("b", "b", 1), "b.b")
	p.Spec.ExportTo = v1alpha1.ExportTo{"shop"}
	p.Spec.LoadBalancer = &v1alpha1.LoadBalancer{Policy: v1alpha1.ConsistentHash, HashKey: "user"}
	out := Translate(&Input{ServiceEntries: []*v1alpha1.ServiceEntry{a, b}, MetaRouters: []*v1alpha1.MetaRouter{r},
		DestinationPolicies: []*v1alpha1.DestinationPolicy{p}}, Options{})
	hashed := func(res *xdsapi.Resources) bool {
		for _, vh := range res.Routes[0].VirtualHosts {
			if vh.Domains[0] == "a.a" {
				return len(vh.Routes[0].GetRoute().GetHashPolicy()) > 0
			}
		}
		t.Fatal("no virtual host a.a")
		return false
	}
	if !hashed(out.Views.For("shop")) || hashed(out.Views.Default) {
		t.Errorf("route a.a → b.b hashed: in shop's view %v (want true), in Default %v (want false)", hashed(out.Views.For("shop")), hashed(out.Views.Default))
	}
}

// A MetaRouter exported only to namespaces that don't see its host is
// accepted with a note saying it applies nowhere.
func TestExportedWhereNobodySees(t *testing.T) {
	se := exported(entry(created("a", "svc", 1), "svc.a", 20880, "dubbo"), ".")
	typo := router(created("a", "typo", 1), "svc.a")
	typo.Spec.ExportTo = v1alpha1.ExportTo{"shpo"}
	own := router(created("a", "own", 2), "svc.a")
	own.Spec.ExportTo = v1alpha1.ExportTo{"."}
	out := Translate(&Input{ServiceEntries: []*v1alpha1.ServiceEntry{se}, MetaRouters: []*v1alpha1.MetaRouter{typo, own}}, Options{})
	got := out.Status["MetaRouter/a/typo"].Get(v1alpha1.ConditionAccepted)
	if got.Status != "True" || !strings.Contains(got.Message, "spec.exportTo: none of the namespaces shpo sees svc.a, so it applies nowhere") {
		t.Errorf("typo: %s %s", got.Status, got.Message)
	}
	if got := out.Status["MetaRouter/a/own"].Get(v1alpha1.ConditionAccepted); got.Message != "accepted" {
		t.Errorf("own: %s", got.Message)
	}
}
