package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// wantCondition waits until obj has the condition typ with status and
// reason, for its current generation, and a message containing msg.
func wantCondition(t *testing.T, c client.Client, obj client.Object, typ string, status metav1.ConditionStatus, reason, msg string) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	eventually(t, fmt.Sprintf("%s %s: %s=%s %s", kindOf(obj), key, typ, status, reason), func() (bool, string) {
		if err := c.Get(context.Background(), key, obj); err != nil {
			return false, err.Error()
		}
		st := statusOf(obj)
		got := meta.FindStatusCondition(st.Conditions, typ)
		switch {
		case got == nil:
			return false, fmt.Sprintf("no %s condition in %+v", typ, st)
		case st.ObservedGeneration != obj.GetGeneration() || got.ObservedGeneration != obj.GetGeneration():
			return false, fmt.Sprintf("observed generation %d/%d, object is at %d", st.ObservedGeneration, got.ObservedGeneration, obj.GetGeneration())
		case got.Status != status || got.Reason != reason || !strings.Contains(got.Message, msg):
			return false, fmt.Sprintf("%s=%s %s: %s", typ, got.Status, got.Reason, got.Message)
		}
		return true, ""
	})
}

func dubboRouter(ns, name, host, subset string) *v1alpha1.MetaRouter {
	return &v1alpha1.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.MetaRouterSpec{
			Hosts: []v1alpha1.Host{v1alpha1.Host(host)},
			Routes: []v1alpha1.MetaRoute{{Name: "all", Route: []v1alpha1.WeightedDestination{
				{Destination: v1alpha1.Destination{Host: v1alpha1.Host(host), Subset: v1alpha1.Name(subset)}},
			}}},
		},
	}
}

// TestStatusConditions: the translation's conditions land on the objects,
// follow their changes, and stay put (no rewrite) when nothing changed.
func TestStatusConditions(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "status")
	createService(t, c, ns, "orders", 20890, "dubbo", "v1")
	host := "orders." + ns + ".svc.cluster.local"
	dp := &v1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orders"},
		Spec:       v1alpha1.DestinationPolicySpec{Host: v1alpha1.Host(host), Subsets: []v1alpha1.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}},
	}
	mr := dubboRouter(ns, "orders", host, "v9")
	orphan := &v1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nowhere"},
		Spec:       v1alpha1.DestinationPolicySpec{Host: "nowhere.example"},
	}
	for _, o := range []client.Object{dp, mr, orphan} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startSource(t, cfg, Options{})

	wantCondition(t, c, dp, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "accepted")
	wantCondition(t, c, dp, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "")
	wantCondition(t, c, mr, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonUnknownSubset, "v9")
	wantCondition(t, c, orphan, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "nowhere.example")

	// Fix the route: ResolvedRefs turns True for the new generation.
	mr.Spec.Routes[0].Route[0].Destination.Subset = "v1"
	if err := c.Update(ctx, mr); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "")

	// An unchanged object is not written again: its resourceVersion stays
	// while other objects change.
	if err := c.Get(ctx, client.ObjectKeyFromObject(dp), dp); err != nil {
		t.Fatal(err)
	}
	rv := dp.ResourceVersion
	other := dubboRouter(ns, "other", "nowhere.example", "")
	if err := c.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, c, other, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "nowhere.example")
	if err := c.Get(ctx, client.ObjectKeyFromObject(dp), dp); err != nil {
		t.Fatal(err)
	}
	if dp.ResourceVersion != rv {
		t.Errorf("DestinationPolicy rewritten with nothing changed: resourceVersion %s → %s, status %+v", rv, dp.ResourceVersion, dp.Status)
	}
}

// TestAerakiKinds: Aeraki's MetaRouter and ApplicationProtocol are read,
// converted and reported on; a global rate limit whose service no
// ServiceEntry defines is refused by name on the object.
func TestAerakiKinds(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "aeraki")
	createService(t, c, ns, "rpc", 20900, "my-rpc")
	host := "rpc." + ns + ".svc.cluster.local"
	ap := &aeraki.ApplicationProtocol{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-rpc"},
		Spec:       aeraki.ApplicationProtocolSpec{Protocol: "my-rpc", Codec: "aeraki.meta_protocol.codec.dubbo"},
	}
	mr := &aeraki.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rpc"},
		Spec: aeraki.MetaRouterSpec{Hosts: []string{host}, Routes: []aeraki.MetaRoute{{
			Name: "all", Route: []aeraki.MetaRouteDestination{{Destination: aeraki.Destination{Host: host}}},
		}}},
	}
	gw := &aeraki.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: aeraki.MetaRouterSpec{Hosts: []string{host}, Gateways: []string{"istio-system/gw"}, Routes: []aeraki.MetaRoute{{
			Name: "at-the-gateway", Route: []aeraki.MetaRouteDestination{{Destination: aeraki.Destination{Host: host}}},
		}}},
	}
	sayHello := "sayHello"
	global := &aeraki.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "global"},
		Spec: aeraki.MetaRouterSpec{Hosts: []string{host}, GlobalRateLimit: &aeraki.GlobalRateLimit{
			Domain: "production", RateLimitService: "outbound|8081||rate-limit-server.istio-system.svc.cluster.local",
			Match:       aeraki.MetaRouteMatch{Attributes: map[string]aeraki.StringMatch{"method": {Exact: &sayHello}}},
			Descriptors: []aeraki.RateLimitDescriptor{{Property: "method", DescriptorKey: "method"}},
		}},
	}
	for _, o := range []client.Object{ap, mr, gw, global} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	src := startSource(t, cfg, Options{})

	wantCondition(t, c, ap, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, mr, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "")
	wantCondition(t, c, gw, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, global, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost,
		"spec.globalRateLimit.rateLimitService: no ServiceEntry defines rate-limit-server.istio-system.svc.cluster.local")
	eventually(t, "a my-rpc listener on the Service's port, routed by gw at its gateway", func() (bool, string) {
		out := src.output()
		if out == nil {
			return false, "nothing published"
		}
		var names []string
		for _, l := range out.Resources.Listeners {
			names = append(names, l.Name)
		}
		if !slices.Contains(names, "my-rpc-20900") {
			return false, fmt.Sprintf("listeners %v", names)
		}
		// The gateway also sees what other tests sharing this API server
		// export to every namespace: look at the my-rpc route table only.
		res := out.Views.ForGateway("istio-system/gw")
		for _, rc := range res.Routes {
			if rc.Name != "my-rpc-20900" {
				continue
			}
			if len(rc.VirtualHosts) != 1 || len(rc.VirtualHosts[0].Routes) == 0 || rc.VirtualHosts[0].Routes[0].Name != "at-the-gateway" {
				return false, fmt.Sprintf("the gateway's my-rpc routes %v", rc)
			}
			return true, ""
		}
		return false, fmt.Sprintf("the gateway has no my-rpc route table: %v", res.Routes)
	})
}
